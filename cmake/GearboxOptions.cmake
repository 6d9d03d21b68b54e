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

# gearbox_add_gtest(<name> SOURCES <file>... [LIBRARIES <lib>...] [INCLUDES <dir>...] [OWN_MAIN]):
# a GoogleTest executable configured like every gearbox target, each case registered with
# ctest as <name>.<Suite>.<case> with a 120 s timeout (a hang fails instead of stalling CI).
# OWN_MAIN: the sources bring main() (programs whose test executable is also the process
# pool's worker call gb::init first); otherwise GoogleTest's main is linked.
function(gearbox_add_gtest name)
  cmake_parse_arguments(arg "OWN_MAIN" "" "SOURCES;LIBRARIES;INCLUDES" ${ARGN})
  find_package(GTest REQUIRED)
  include(GoogleTest)
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBRARIES} GTest::gtest)
  if(NOT arg_OWN_MAIN)
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  if(arg_INCLUDES)
    target_include_directories(${name} PRIVATE ${arg_INCLUDES})
  endif()
  gearbox_configure_target(${name})
  gtest_discover_tests(${name} TEST_PREFIX "${name}." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
endfunction()
