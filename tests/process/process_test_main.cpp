// main() of the process-pool tests: a test executable is also the program its pools spawn
// as workers, so gb::init must run before GoogleTest sees the arguments.
#include <gtest/gtest.h>

#include <gearbox/process/init.hpp>

int main(int argc, char** argv) {
  gearbox::init(argc, argv);  // a worker never returns from here
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
