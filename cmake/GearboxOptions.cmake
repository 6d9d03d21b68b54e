# Compiler warnings and sanitizers, applied per target (never by rewriting global flags).
include_guard(GLOBAL)

set(GEARBOX_SANITIZE "" CACHE STRING "Sanitizers for gearbox targets: address,undefined | thread | empty")

# gearbox_configure_target(<target>): warnings, and the sanitizers chosen by the preset.
function(gearbox_configure_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # Task<T> hands control over by symmetric transfer, which keeps deep await chains in
  # constant stack only if the compiler emits it as a tail call. g++ does so at -O1 and
  # above, but not at -O0 unless sibling-call optimisation is on (clang always does). See
  # the note in include/gearbox/task.hpp, and tests/CMakeLists.txt for the sanitizers.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE $<$<CONFIG:Debug>:-foptimize-sibling-calls>)
  endif()
  if(GEARBOX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE})
  endif()
endfunction()
