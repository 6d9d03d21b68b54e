// A process where the kernel refuses io_uring, as a container's seccomp profile does: this
// binary's main installs a seccomp filter that fails io_uring_setup with EPERM before any
// test runs. Then `automatic` falls back to epoll and the blocking pool, visibly (why_not),
// files and sockets still work, and asking for io_uring is a clear error.
#include <gearbox/io_backend.hpp>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <gearbox/loop.hpp>
#include <gearbox/os/file.hpp>
#include <gearbox/runtime.hpp>

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace gb = gearbox;

namespace {

#if defined(__x86_64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t k_audit_arch = AUDIT_ARCH_AARCH64;
#endif

// io_uring_setup fails with EPERM; every other system call is allowed.
bool refuse_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k_audit_arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{.len = static_cast<unsigned short>(std::size(filter)), .filter = filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

}  // namespace

TEST(IoUringRefused, support_says_unavailable_and_why) {
  const gb::IoUringSupport& support = gb::io_uring_support();
  EXPECT_FALSE(support.available);
  EXPECT_NE(support.why_not.find("EPERM"), std::string::npos) << support.why_not;
  EXPECT_NE(support.why_not.find("seccomp"), std::string::npos) << support.why_not;
}

TEST(IoUringRefused, automatic_loops_and_runtimes_fall_back_to_epoll_and_files_still_work) {
  ::unsetenv("GEARBOX_IO_BACKEND");
  EXPECT_EQ(gb::default_io_backend(), gb::IoBackend::epoll);
  gearbox_test::TempDir dir;
  gb::Loop loop;
  EXPECT_EQ(loop.io_backend(), gb::IoBackend::epoll);
  const std::string back = loop.run([](std::filesystem::path path) -> gb::Task<std::string> {
    co_await gb::os::write_file(path, "through the blocking pool");
    co_return co_await gb::os::read_file(path);
  }(dir / "f"));
  EXPECT_EQ(back, "through the blocking pool");
  gb::Runtime runtime{{.threads = 2}};
  EXPECT_EQ(runtime.io_backend(), gb::IoBackend::epoll);
}

TEST(IoUringRefused, asking_for_io_uring_is_an_error_that_gives_the_reason) {
  try {
    gb::Loop loop{{.clock = nullptr, .auto_advance = false, .on_unhandled_exception = {}, .io_backend = gb::IoBackend::io_uring}};
    ADD_FAILURE() << "a loop got io_uring where the kernel refuses it";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("EPERM"), std::string::npos) << e.what();
  }
  ::setenv("GEARBOX_IO_BACKEND", "io_uring", 1);
  EXPECT_THROW(gb::default_io_backend(), std::runtime_error);
  ::unsetenv("GEARBOX_IO_BACKEND");
}

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (!refuse_io_uring()) {
    std::perror("gearbox test: installing the seccomp filter");
    return 1;
  }
  return RUN_ALL_TESTS();
}
