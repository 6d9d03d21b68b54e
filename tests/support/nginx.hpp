// Nginx: a real nginx (nginx-light, installed by scripts/setup) serving a directory on
// 127.0.0.1, started by a test and stopped when destroyed. For the HTTP client's tests and
// the examples that download.
//
//   gearbox_test::Nginx nginx(dir);                 // dir/root is served
//   if (!gearbox_test::Nginx::installed()) GTEST_SKIP();
//   nginx.put_file("a.bin", bytes);
//   fetch(nginx.url("/a.bin"));
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace gearbox_test {

namespace nginx_detail {

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

inline bool accepting(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

inline std::string nginx_path() {
  for (const char* path : {"/usr/sbin/nginx", "/usr/bin/nginx"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

}  // namespace nginx_detail

class Nginx {
public:
  static bool installed() { return !nginx_detail::nginx_path().empty(); }

  // Writes a configuration into `work` and starts nginx on a free port, serving work/root;
  // waits (up to 5 s) until it accepts connections. running() says whether it did.
  // `server_directives` go into the server block as they are ("limit_rate 1m;").
  explicit Nginx(const std::filesystem::path& work, const std::string& server_directives = {}) : m_work(work) {
    namespace fs = std::filesystem;
    fs::create_directories(work / "root");
    m_port = nginx_detail::free_port();
    std::ofstream conf(work / "nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1; error_log stderr error; pid " << (work / "nginx.pid").string()
         << ";\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  log_not_found off;\n  client_body_temp_path "
         << (work / "body").string() << ";\n  proxy_temp_path " << (work / "proxy").string() << ";\n  fastcgi_temp_path "
         << (work / "fastcgi").string() << ";\n  uwsgi_temp_path " << (work / "uwsgi").string() << ";\n  scgi_temp_path "
         << (work / "scgi").string() << ";\n  server {\n    listen 127.0.0.1:" << m_port << ";\n    root "
         << (work / "root").string() << ";\n    " << server_directives << "\n  }\n}\n";
    conf.close();
    const std::string nginx = nginx_detail::nginx_path();
    if (nginx.empty()) return;
    std::vector<std::string> args = {nginx, "-p", work.string(), "-c", (work / "nginx.conf").string(), "-e", "stderr"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&m_pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) m_pid = 0;
    for (int i = 0; i < 250 && m_pid > 0 && !nginx_detail::accepting(m_port); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~Nginx() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      ::waitpid(m_pid, nullptr, 0);
    }
    std::filesystem::remove_all(m_work);
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  bool running() const { return m_pid > 0 && nginx_detail::accepting(m_port); }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
  void put_file(const std::string& name, const std::string& content) const {
    std::ofstream(m_work / "root" / name, std::ios::binary) << content;
  }

private:
  std::filesystem::path m_work;
  int m_port = 0;
  pid_t m_pid = 0;
};

}  // namespace gearbox_test
