// main() of lab_test: the experiments start process pools, whose workers are this test
// executable, so gb::init must run before GoogleTest sees the arguments.
#include <gtest/gtest.h>

#include <gearbox/process/init.hpp>

int main(int argc, char** argv) {
  gearbox::init(argc, argv);  // a worker never returns from here
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
