// ProcessPool: starting a worker (posix_spawn of this executable, its socket, pidfd and
// progress page, the welcome frame). See pool_impl.hpp for the locking rules.
#include "process/pool_impl.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "process/worker_protocol.hpp"
#include "trace/recorder.hpp"

extern char** environ;

namespace gearbox {

using namespace detail::pool;

void ProcessPool::Impl::spawn_worker() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw IoError(errno, "socketpair");
  int child = pair[1];
  if (child == wire::k_socket_fd) {  // dup2 onto itself would keep FD_CLOEXEC set
    child = ::fcntl(pair[1], F_DUPFD_CLOEXEC, 10);
    ::close(pair[1]);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child, wire::k_socket_fd);
  posix_spawn_file_actions_addclosefrom_np(&actions, wire::k_socket_fd + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const std::string parent = std::to_string(::getpid());
  char* argv[] = {const_cast<char*>("gearbox-worker"), const_cast<char*>(detail::k_worker_flag),
                  const_cast<char*>(detail::k_protocol_tag), const_cast<char*>(parent.c_str()),
                  options.initializer.empty() ? nullptr : const_cast<char*>(options.initializer.c_str()), nullptr};
  // While tracing, the worker is told where to leave its events (see trace/recorder.hpp).
  std::string trace_variable = trace::detail::worker_environment();
  std::vector<char*> environment;
  if (!trace_variable.empty()) {
    for (char** entry = environ; *entry; ++entry) environment.push_back(*entry);
    environment.push_back(trace_variable.data());
    environment.push_back(nullptr);
  }
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv,
                                    environment.empty() ? environ : environment.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(child);
  if (spawned != 0) {
    ::close(pair[0]);
    throw IoError(spawned, "posix_spawn(/proc/self/exe)");
  }
  auto w = std::make_unique<Worker>();
  w->key = next_key++;
  w->pid = pid;
  w->traced = !trace_variable.empty();
  w->socket = pair[0];
  w->pidfd = pidfd_open(pid);
  if (w->pidfd < 0) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(pair[0]);
    throw IoError(error, "pidfd_open");
  }
  ::fcntl(w->socket, F_SETFL, ::fcntl(w->socket, F_GETFL) | O_NONBLOCK);
  // The progress page, handed over in the welcome frame (only the socket is inherited).
  const int page = ::memfd_create("gearbox-progress", MFD_CLOEXEC);
  if (page >= 0 && ::ftruncate(page, sizeof(wire::Progress)) == 0) {
    void* address = ::mmap(nullptr, sizeof(wire::Progress), PROT_READ | PROT_WRITE, MAP_SHARED, page, 0);
    if (address != MAP_FAILED) w->progress = static_cast<wire::Progress*>(address);
  }
  welcome_send(w->socket, page);
  if (page >= 0) ::close(page);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = w->key * 4 + k_socket_event;
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, w->socket, &event);
  event.events = EPOLLIN;
  event.data.u64 = w->key * 4 + k_pidfd_event;
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, w->pidfd, &event);
  ++counters.spawned;
  workers.push_back(std::move(w));
}

void ProcessPool::Impl::welcome_send(int socket, int page) {
  // A frame with no records and one descriptor; a failure shows up as the worker's exit.
  wire::FrameHeader header{wire::k_magic, wire::k_version, static_cast<std::uint16_t>(wire::Kind::welcome), 0,
                           page >= 0 ? 1u : 0u};
  iovec iov{&header, sizeof header};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (page >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &page, sizeof(int));
  }
  (void)::sendmsg(socket, &message, MSG_NOSIGNAL);
}

}  // namespace gearbox
