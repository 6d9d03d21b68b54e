# Installs the build tree into a scratch prefix, moves the prefix elsewhere (an installed
# package must not remember where it was installed), then configures, builds and runs a
# consumer project that finds it there with find_package(gearbox COMPONENTS http). Fails
# on any step. Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR.
file(REMOVE_RECURSE ${WORK_DIR})
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "install check failed at: ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
run_step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/installed-here)
file(RENAME ${WORK_DIR}/installed-here ${WORK_DIR}/moved-there)
# Nothing installed may name the first prefix.
file(GLOB_RECURSE config_files ${WORK_DIR}/moved-there/*.cmake)
foreach(file IN LISTS config_files)
  file(READ ${file} text)
  string(FIND "${text}" "installed-here" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "install check failed: ${file} names the install prefix")
  endif()
endforeach()
run_step(${CMAKE_COMMAND} -G Ninja -S ${SOURCE_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/moved-there)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step(${WORK_DIR}/build/consumer)
message(STATUS "installed gearbox moved, found with its http component, built and ran a consumer")
