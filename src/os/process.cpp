#include <gearbox/os/process.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>

extern char** environ;

namespace gearbox::os {

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int signal_number) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal_number, nullptr, 0));
}

// The descriptors of one spawn, closed on every path out of spawn().
struct Pipes {
  int child_end[3] = {-1, -1, -1};   // what the child gets as 0, 1, 2
  int parent_end[3] = {-1, -1, -1};  // what the parent keeps
  ~Pipes() {
    for (int fd : child_end)
      if (fd >= 0) ::close(fd);
    for (int fd : parent_end)
      if (fd >= 0) ::close(fd);
  }
};

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
};

void ignore_sigpipe_once() {
  static const bool done = [] {
    struct sigaction current{};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

ExitStatus status_from(const siginfo_t& info) {
  ExitStatus status;
  if (info.si_code == CLD_EXITED) {
    status.code = info.si_status;
  } else {
    status.signal = info.si_status;
  }
  return status;
}

Task<int> feed(net::ByteStream& stream, std::string data) {
  try {
    co_await stream.write_all(data);
  } catch (const IoError& e) {
    if (e.error_number() != EPIPE) throw;  // the child stopped reading: as Python, not an error
  }
  stream.close();
  co_return 0;
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exit code " + std::to_string(code);
}

Process::Process(Process&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_pidfd(std::move(other.m_pidfd)), m_status(std::move(other.m_status)),
      m_stdin(std::move(other.m_stdin)), m_stdout(std::move(other.m_stdout)), m_stderr(std::move(other.m_stderr)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));  // killed and reaped at the end of this scope, if running
    m_pid = std::exchange(other.m_pid, -1);
    m_pidfd = std::move(other.m_pidfd);
    m_status = std::move(other.m_status);
    m_stdin = std::move(other.m_stdin);
    m_stdout = std::move(other.m_stdout);
    m_stderr = std::move(other.m_stderr);
  }
  return *this;
}

Process::~Process() {
  if (m_pid > 0 && !m_status) {
    try {
      kill(SIGKILL);
      while (!try_reap(0)) {  // blocks only until the kernel has finished the killed child
      }
    } catch (const IoError&) {
      // Nothing is left to do: the pidfd is closed below and the kernel reaps at our exit.
    }
  }
}

Process Process::spawn(ProcessOptions options) {
  if (options.args.empty()) throw std::invalid_argument("gearbox: Process::spawn needs a program (args is empty)");
  Pipes pipes;
  SpawnSetup setup;
  const Stdio modes[3] = {options.stdin_mode, options.stdout_mode, options.stderr_mode};
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == Stdio::pipe) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) throw IoError(errno, "pipe2");
      const bool child_reads = i == 0;
      pipes.child_end[i] = child_reads ? fds[0] : fds[1];
      pipes.parent_end[i] = child_reads ? fds[1] : fds[0];
      ::fcntl(pipes.parent_end[i], F_SETFL, O_NONBLOCK);
      posix_spawn_file_actions_adddup2(&setup.actions, pipes.child_end[i], i);  // dup2 drops CLOEXEC
    } else if (modes[i] == Stdio::null) {
      posix_spawn_file_actions_addopen(&setup.actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
  }
  if (options.working_directory)
    posix_spawn_file_actions_addchdir_np(&setup.actions, options.working_directory->c_str());
  // The loop's thread may block signals (SignalSet) and the parent may ignore SIGPIPE: the
  // child starts with an empty mask and default dispositions.
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attributes, &none);
  posix_spawnattr_setsigdefault(&setup.attributes, &all);
  posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (std::string& arg : options.args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.environment) {
    for (std::string& entry : *options.environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  if (options.stdin_mode == Stdio::pipe) ignore_sigpipe_once();

  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, argv[0], &setup.actions, &setup.attributes, argv.data(),
                                   options.environment ? envp.data() : environ);
  if (error != 0) throw IoError(error, "spawn " + options.args[0]);

  Process process;
  process.m_pid = pid;
  const int pidfd = pidfd_open(pid);
  if (pidfd < 0) {
    const int open_error = errno;
    ::kill(pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED);
    process.m_pid = -1;
    throw IoError(open_error, "pidfd_open");
  }
  process.m_pidfd = detail::AsyncFd{pidfd};
  net::ByteStream* streams[3] = {&process.m_stdin, &process.m_stdout, &process.m_stderr};
  for (int i = 0; i < 3; ++i)
    if (pipes.parent_end[i] >= 0) *streams[i] = net::ByteStream{detail::AsyncFd{std::exchange(pipes.parent_end[i], -1)}};
  return process;
}

net::ByteStream& Process::stdin_stream() {
  if (!m_stdin.is_open()) throw std::logic_error("gearbox: the process's stdin is not a pipe (or was closed)");
  return m_stdin;
}

net::ByteStream& Process::stdout_stream() {
  if (!m_stdout.is_open()) throw std::logic_error("gearbox: the process's stdout is not a pipe (or was closed)");
  return m_stdout;
}

net::ByteStream& Process::stderr_stream() {
  if (!m_stderr.is_open()) throw std::logic_error("gearbox: the process's stderr is not a pipe (or was closed)");
  return m_stderr;
}

bool Process::try_reap(int flags) {
  if (m_status) return true;
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(m_pidfd.fd()), &info, WEXITED | flags) != 0) {
    if (errno == EINTR) return false;
    throw IoError(errno, "waitid");
  }
  if (info.si_pid == 0) return false;  // WNOHANG, still running
  m_status = status_from(info);
  m_pidfd.close();
  return true;
}

Task<ExitStatus> Process::wait() {
  if (m_pid <= 0) throw std::logic_error("gearbox: Process::wait on a process that was not spawned");
  while (!try_reap(WNOHANG)) {
    // The tick before the check, so that an exit during the check is not waited past.
    const std::uint32_t tick = m_pidfd.readable_tick();
    if (try_reap(WNOHANG)) break;
    co_await m_pidfd.wait_readable(tick);
  }
  co_return *m_status;
}

void Process::kill(int signal_number) {
  if (m_status || m_pid <= 0) return;
  if (pidfd_send_signal(m_pidfd.fd(), signal_number) != 0 && errno != ESRCH) throw IoError(errno, "kill");
}

Task<std::string> read_all(net::ByteStream& stream) {
  std::string all;
  char buffer[16 * 1024];
  for (;;) {
    const std::size_t n = co_await stream.read(std::span<char>(buffer));
    if (n == 0) co_return all;
    all.append(buffer, n);
  }
}

Task<Output> run(ProcessOptions options, std::string input) {
  options.stdin_mode = input.empty() ? Stdio::null : Stdio::pipe;
  options.stdout_mode = Stdio::pipe;
  options.stderr_mode = Stdio::pipe;
  Process child = Process::spawn(std::move(options));
  Output output;
  if (input.empty()) {
    auto [out, err] = co_await gather(read_all(child.stdout_stream()), read_all(child.stderr_stream()));
    output.out = std::move(out);
    output.err = std::move(err);
  } else {
    auto [fed, out, err] =
        co_await gather(feed(child.stdin_stream(), std::move(input)), read_all(child.stdout_stream()),
                        read_all(child.stderr_stream()));
    (void)fed;
    output.out = std::move(out);
    output.err = std::move(err);
  }
  output.status = co_await child.wait();
  co_return output;
}

}  // namespace gearbox::os
