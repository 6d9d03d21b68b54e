# Compiler warnings and sanitizers, applied per target (never by rewriting global flags).
include_guard(GLOBAL)

set(GEARBOX_SANITIZE "" CACHE STRING "Sanitizers for gearbox targets: address,undefined | thread | empty")
option(GEARBOX_WERROR "Treat compiler warnings as errors (scripts/test, and so CI, turns it on)" OFF)

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
  if(GEARBOX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # g++ 12 at -O2/-O3 reports a std::string built from a literal and a temporary
  # ("[" + std::string(text)) as an overlapping memcpy: a false positive in libstdc++'s
  # inlined code (GCC bug 105651, fixed in g++ 13). Not an error, and not a warning to read.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(GEARBOX_SANITIZE)
    # -O1, as the sanitizers' documentation advises: half the compile time of -O2 for the
    # same checks. Under ASan+UBSan, -Og: UBSan's checks make g++'s -O1 pipeline slow (a
    # test file of the thread pool: 29.7 s at -O1, 17.5 s at -Og, 9.5 s unsanitized), and
    # at -Og with -foptimize-sibling-calls symmetric transfer stays a tail call (task_test's
    # deep chains prove it). Not under TSan: there -Og loses the tail call, and -O1 costs
    # little more. Sibling calls stay on: symmetric transfer must remain a tail call.
    # -g1: line tables, all a sanitizer report needs.
    if(GEARBOX_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      set(level -Og)
    else()
      set(level -O1)
    endif()
    target_compile_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all ${level} -g1 -foptimize-sibling-calls)
    target_link_options(${target} PRIVATE -fsanitize=${GEARBOX_SANITIZE})
    # The sanitizers' instrumentation hides initialisations and object sizes from g++'s
    # flow analysis: it then reports maybe-uninitialized inside libstdc++ (std::function in
    # std::regex) and, before g++ 13, array-bounds and stringop-overflow in std::string's
    # operator+ (the family of GCC bug 105651), which the release build, analysed without
    # instrumentation, does not.
    # GCC's manual warns that -fsanitize may cause such false positives. The release build
    # keeps both warnings, and ASan checks every bound at run time.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
      if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
        target_compile_options(${target} PRIVATE -Wno-array-bounds -Wno-stringop-overflow)
      endif()
    endif()
  endif()
endfunction()

# gearbox_add_gtest(<name> SOURCES <file>... [LIBRARIES <lib>...] [INCLUDES <dir>...] [OWN_MAIN]
#                   [TIMEOUT <s>] [ENVIRONMENT <VAR=value>...]): a GoogleTest executable
# configured like every gearbox target, each case registered with ctest as
# <name>.<Suite>.<case> with a timeout (120 s unless told; a hang fails instead of stalling
# CI). OWN_MAIN: the sources bring main() (programs whose test executable is also the
# process pool's worker call gb::init first); otherwise GoogleTest's main is linked. The
# one way tests are registered, in tests/, tools/ and examples/.
function(gearbox_add_gtest name)
  cmake_parse_arguments(arg "OWN_MAIN" "TIMEOUT" "SOURCES;LIBRARIES;INCLUDES;ENVIRONMENT" ${ARGN})
  if(NOT TARGET GTest::gtest)
    find_package(GTest REQUIRED)
  endif()
  include(GoogleTest)
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  gearbox_test_pch()
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ${arg_LIBRARIES} GTest::gtest)
  target_compile_features(${name} PRIVATE cxx_std_20)
  # Every test file starts from one precompiled header (GoogleTest, gearbox's public API and
  # the standard library), built once per build tree: parsing them was a third of a test
  # file's compile time. It only adds declarations; a test still includes what it uses.
  target_precompile_headers(${name} REUSE_FROM gearbox_test_pch)
  if(NOT arg_OWN_MAIN)
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  if(arg_INCLUDES)
    target_include_directories(${name} PRIVATE ${arg_INCLUDES})
  endif()
  gearbox_configure_target(${name})
  set(properties TIMEOUT ${arg_TIMEOUT})
  if(arg_ENVIRONMENT)
    list(APPEND properties ENVIRONMENT "${arg_ENVIRONMENT}")
  endif()
  gtest_discover_tests(${name} TEST_PREFIX "${name}." DISCOVERY_TIMEOUT 60 PROPERTIES ${properties})
endfunction()

# gearbox_test_pch(): the precompiled header every gearbox_add_gtest executable reuses,
# made on first use, with the flags of every gearbox target (gearbox_configure_target).
function(gearbox_test_pch)
  if(TARGET gearbox_test_pch)
    return()
  endif()
  add_library(gearbox_test_pch OBJECT ${PROJECT_SOURCE_DIR}/tests/support/pch.cpp)
  target_link_libraries(gearbox_test_pch PRIVATE gearbox::gearbox GTest::gtest GTest::gmock)
  target_compile_features(gearbox_test_pch PRIVATE cxx_std_20)
  gearbox_configure_target(gearbox_test_pch)
  target_precompile_headers(gearbox_test_pch PRIVATE
    <algorithm> <atomic> <chrono> <cstddef> <cstdint> <exception> <functional> <map> <memory>
    <optional> <stdexcept> <string> <string_view> <thread> <utility> <vector>
    <gtest/gtest.h> <gmock/gmock.h> <gearbox/gearbox.hpp>)
endfunction()

# gearbox_library_properties(<target> <export-name>): what every installed gearbox library
# carries: its name in the package (gearbox::<export-name>), its version and soversion, and
# its symbol visibility. A static library hides its symbols, so a user's shared object that
# links it does not re-export gearbox; a shared gearbox (BUILD_SHARED_LIBS) has no export
# annotations, so it exports what it defines.
function(gearbox_library_properties target export_name)
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${export_name}
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  if(NOT BUILD_SHARED_LIBS)
    set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  endif()
endfunction()

# gearbox_add_cli_test(<name> COMMAND <target> ARGS <arg>... OUTPUT <regex>)
# Runs a command-line tool and checks what a user would see: its output (stdout and
# stderr together) followed by a last line "exit status <code>" must match OUTPUT.
function(gearbox_add_cli_test name)
  cmake_parse_arguments(PARSE_ARGV 1 CLI "" "COMMAND;OUTPUT" "ARGS")
  add_test(NAME ${name}
           COMMAND sh -c "\"$0\" \"$@\" 2>&1; echo \"exit status $?\"" $<TARGET_FILE:${CLI_COMMAND}> ${CLI_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT 30 PASS_REGULAR_EXPRESSION "${CLI_OUTPUT}")
endfunction()
