// The runtime suites' parameter: a gb::Runtime of 1, 2, 4 and 8 workers (more workers
// than this machine's cores too, so that workers are preempted mid-protocol).
//
//   class RuntimeSync : public gearbox_test::OnRuntimeThreads {};
//   TEST_P(RuntimeSync, ...) { rt.run(...); }
//   INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeSync, gearbox_test::runtime_threads(), gearbox_test::threads_name);
#pragma once

#include <string>

#include <gearbox/runtime.hpp>

#include <gtest/gtest.h>

namespace gearbox_test {

// A fixture whose `rt` has GetParam() workers.
class OnRuntimeThreads : public testing::TestWithParam<unsigned> {
protected:
  gearbox::Runtime rt{{.threads = GetParam()}};
};

inline auto runtime_threads() { return testing::Values(1u, 2u, 4u, 8u); }

inline std::string threads_name(const testing::TestParamInfo<unsigned>& info) {
  return "threads_" + std::to_string(info.param);
}

}  // namespace gearbox_test
