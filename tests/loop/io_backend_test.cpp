// The I/O back end a loop or runtime gets (io_backend.hpp): asked for explicitly, through
// GEARBOX_IO_BACKEND, or detected; a bad value of the variable is a clear error. The
// process where io_uring is refused is io_uring_refused_test.
#include <gearbox/io_backend.hpp>

#include <stdlib.h>

#include <stdexcept>
#include <string>

#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>

#include <gtest/gtest.h>

namespace gb = gearbox;

namespace {

// Sets GEARBOX_IO_BACKEND for the scope (this binary runs its tests on one thread).
class ScopedBackendVariable {
public:
  explicit ScopedBackendVariable(const char* value) {
    if (const char* old = ::getenv("GEARBOX_IO_BACKEND")) m_old = old, m_had = true;
    ::setenv("GEARBOX_IO_BACKEND", value, 1);
  }
  ~ScopedBackendVariable() {
    if (m_had)
      ::setenv("GEARBOX_IO_BACKEND", m_old.c_str(), 1);
    else
      ::unsetenv("GEARBOX_IO_BACKEND");
  }

private:
  std::string m_old;
  bool m_had = false;
};

}  // namespace

TEST(IoBackend, names_are_the_ones_the_variable_takes) {
  EXPECT_STREQ(gb::to_string(gb::IoBackend::epoll), "epoll");
  EXPECT_STREQ(gb::to_string(gb::IoBackend::io_uring), "io_uring");
  EXPECT_STREQ(gb::to_string(gb::IoBackend::automatic), "automatic");
}

TEST(IoBackend, support_is_explained_when_missing_and_silent_when_present) {
  const gb::IoUringSupport& support = gb::io_uring_support();
  EXPECT_EQ(support.available, support.why_not.empty()) << support.why_not;
  EXPECT_EQ(&support, &gb::io_uring_support()) << "probed once";
}

TEST(IoBackend, epoll_asked_for_is_what_a_loop_and_a_runtime_use) {
  gb::Loop loop{{.clock = nullptr, .auto_advance = false, .on_unhandled_exception = {}, .io_backend = gb::IoBackend::epoll}};
  EXPECT_EQ(loop.io_backend(), gb::IoBackend::epoll);
  gb::Runtime runtime{{.threads = 2, .io_backend = gb::IoBackend::epoll}};
  EXPECT_EQ(runtime.io_backend(), gb::IoBackend::epoll);
}

TEST(IoBackend, automatic_is_io_uring_where_available_else_epoll) {
  ScopedBackendVariable unset{"auto"};
  gb::Loop loop;
  EXPECT_EQ(loop.io_backend(), gb::io_uring_support().available ? gb::IoBackend::io_uring : gb::IoBackend::epoll);
}

TEST(IoBackend, the_variable_forces_epoll_for_loops_and_runtimes_that_did_not_choose) {
  ScopedBackendVariable forced{"epoll"};
  EXPECT_EQ(gb::default_io_backend(), gb::IoBackend::epoll);
  gb::Loop loop;
  EXPECT_EQ(loop.io_backend(), gb::IoBackend::epoll);
  gb::Runtime runtime{{.threads = 1}};
  EXPECT_EQ(runtime.io_backend(), gb::IoBackend::epoll);
}

TEST(IoBackend, the_variable_forces_io_uring_or_says_why_it_cannot) {
  ScopedBackendVariable forced{"io_uring"};
  if (gb::io_uring_support().available) {
    gb::Loop loop;
    EXPECT_EQ(loop.io_backend(), gb::IoBackend::io_uring);
  } else {
    EXPECT_THROW(gb::Loop{}, std::runtime_error);
  }
}

TEST(IoBackend, an_unknown_value_of_the_variable_is_an_error_naming_it) {
  ScopedBackendVariable bad{"kqueue"};
  try {
    gb::Loop loop;
    ADD_FAILURE() << "a loop was made with GEARBOX_IO_BACKEND=kqueue";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("GEARBOX_IO_BACKEND"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kqueue"), std::string::npos) << e.what();
  }
}

TEST(IoBackend, an_explicit_choice_wins_over_the_variable) {
  ScopedBackendVariable forced{"io_uring"};
  gb::Loop loop{{.clock = nullptr, .auto_advance = false, .on_unhandled_exception = {}, .io_backend = gb::IoBackend::epoll}};
  EXPECT_EQ(loop.io_backend(), gb::IoBackend::epoll);
}
