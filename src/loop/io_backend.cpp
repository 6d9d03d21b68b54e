#include <gearbox/io_backend.hpp>

#include <liburing.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>

namespace gearbox {
namespace {

std::string errno_text(int error) { return std::string(strerrorname_np(error) ? strerrorname_np(error) : "?") + " (" + std::strerror(error) + ")"; }

IoUringSupport probe() {
  io_uring ring{};
  io_uring_params params{};
  const int rc = io_uring_queue_init_params(4, &ring, &params);
  if (rc < 0) {
    std::string why = "io_uring_setup failed: " + errno_text(-rc);
    int disabled = 0;
    if (std::ifstream file{"/proc/sys/kernel/io_uring_disabled"}; file >> disabled && disabled != 0)
      why += "; kernel.io_uring_disabled is " + std::to_string(disabled);
    else if (rc == -EPERM || rc == -ENOSYS)
      why += "; a seccomp profile or container may refuse it";
    return {false, why, false};
  }
  IoUringSupport support{true, {}, false};
  // What the back end relies on: waits with a timeout in io_uring_enter (5.11), cancel
  // requests that post nothing when they succeed (5.17), no completion ever dropped.
  struct Feature {
    unsigned bit;
    const char* what;
  };
  for (const Feature& f : {Feature{IORING_FEAT_EXT_ARG, "IORING_FEAT_EXT_ARG (Linux 5.11)"},
                           Feature{IORING_FEAT_CQE_SKIP, "IORING_FEAT_CQE_SKIP (Linux 5.17)"},
                           Feature{IORING_FEAT_NODROP, "IORING_FEAT_NODROP (Linux 5.5)"}}) {
    if (!(params.features & f.bit)) {
      support = {false, std::string("the kernel's io_uring lacks ") + f.what, false};
      break;
    }
  }
  if (support.available) {
    if (io_uring_probe* ops = io_uring_get_probe_ring(&ring)) {
      struct Op {
        int code;
        const char* name;
      };
      for (const Op& op : {Op{IORING_OP_OPENAT, "OPENAT"}, Op{IORING_OP_READ, "READ"}, Op{IORING_OP_WRITE, "WRITE"},
                           Op{IORING_OP_FSYNC, "FSYNC"}, Op{IORING_OP_CLOSE, "CLOSE"},
                           Op{IORING_OP_POLL_ADD, "POLL_ADD"}, Op{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}}) {
        if (!io_uring_opcode_supported(ops, op.code)) {
          support = {false, std::string("the kernel's io_uring lacks IORING_OP_") + op.name, false};
          break;
        }
      }
      // Linux 5.19 brought IORING_OP_SOCKET and cancellation by descriptor together.
      support.socket_completion = support.available && io_uring_opcode_supported(ops, IORING_OP_SOCKET);
      io_uring_free_probe(ops);
    } else {
      support = {false, "io_uring's opcode probe failed (Linux 5.6 or later is needed)", false};
    }
  }
  io_uring_queue_exit(&ring);
  return support;
}

}  // namespace

const char* to_string(IoBackend backend) noexcept {
  switch (backend) {
  case IoBackend::automatic: return "automatic";
  case IoBackend::epoll: return "epoll";
  case IoBackend::io_uring: return "io_uring";
  }
  return "?";
}

const char* to_string(SocketIo mode) noexcept {
  switch (mode) {
  case SocketIo::automatic: return "automatic";
  case SocketIo::readiness: return "readiness";
  case SocketIo::completion: return "completion";
  }
  return "?";
}

const IoUringSupport& io_uring_support() {
  static const IoUringSupport support = probe();
  return support;
}

IoBackend default_io_backend() {
  const char* env = std::getenv("GEARBOX_IO_BACKEND");
  const std::string_view asked = env ? env : "";
  if (asked == "epoll") return IoBackend::epoll;
  if (asked == "io_uring") {
    if (!io_uring_support().available)
      throw std::runtime_error("gearbox: GEARBOX_IO_BACKEND=io_uring, but " + io_uring_support().why_not);
    return IoBackend::io_uring;
  }
  if (!asked.empty() && asked != "auto")
    throw std::invalid_argument("gearbox: GEARBOX_IO_BACKEND must be epoll, io_uring or auto, not \"" + std::string(asked) + "\"");
  return io_uring_support().available ? IoBackend::io_uring : IoBackend::epoll;
}

SocketIo default_socket_io() {
  const char* env = std::getenv("GEARBOX_SOCKET_IO");
  const std::string_view asked = env ? env : "";
  if (asked == "completion") return SocketIo::completion;
  if (asked.empty() || asked == "readiness" || asked == "auto") return SocketIo::readiness;
  throw std::invalid_argument("gearbox: GEARBOX_SOCKET_IO must be readiness, completion or auto, not \"" +
                              std::string(asked) + "\"");
}

}  // namespace gearbox
