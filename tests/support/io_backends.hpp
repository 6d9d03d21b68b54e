// Tests that run on every I/O back end (io_backend.hpp): a fixture parameterised over
// epoll and io_uring. A test on io_uring is skipped, saying why, where the kernel refuses
// it; on this project's machines it runs.
//
//   class FileTest : public gearbox_test::OnEachBackend {};
//   TEST_P(FileTest, ...) { gb::Loop loop{{.io_backend = backend()}}; ... }
//   GEARBOX_ON_EACH_BACKEND(FileTest);
#pragma once

#include <string>

#include <gearbox/io_backend.hpp>

#include <gtest/gtest.h>

namespace gearbox_test {

class OnEachBackend : public testing::TestWithParam<gearbox::IoBackend> {
protected:
  void SetUp() override {
    if (backend() == gearbox::IoBackend::io_uring && !gearbox::io_uring_support().available)
      GTEST_SKIP() << "io_uring is unavailable here: " << gearbox::io_uring_support().why_not;
  }
  gearbox::IoBackend backend() const { return GetParam(); }
};

inline std::string backend_name(const testing::TestParamInfo<gearbox::IoBackend>& info) {
  return gearbox::to_string(info.param);
}

}  // namespace gearbox_test

#define GEARBOX_ON_EACH_BACKEND(fixture)                                                                   \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture, testing::Values(gearbox::IoBackend::epoll, gearbox::IoBackend::io_uring), \
                           gearbox_test::backend_name)
