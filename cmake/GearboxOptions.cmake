# Compiler warnings and sanitizers, applied per target (never by rewriting global flags).
include_guard(GLOBAL)

set(GEARBOX_SANITIZE "" CACHE STRING "Sanitizers for gearbox targets: address,undefined | thread | empty")

# gearbox_configure_target(<target>): warnings, and the sanitizers chosen by the preset.
function(gearbox_configure_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(GEARBOX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE})
  endif()
endfunction()
