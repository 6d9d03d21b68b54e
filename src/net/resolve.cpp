#include <gearbox/net/resolve.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/to_thread.hpp>

namespace gearbox::net {

namespace {

// What getaddrinfo answered, or its error code.
struct Lookup {
  int code = 0;
  std::vector<SocketAddress> addresses;
};

Lookup lookup(const std::string& host, std::uint16_t port, Family family) {
  addrinfo hints{};
  hints.ai_family = family == Family::ipv4 ? AF_INET : family == Family::ipv6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG: on a host with only a loopback interface it hides "localhost".
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  Lookup result;
  result.code = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (result.code != 0) return result;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(list, &::freeaddrinfo);
  for (const addrinfo* entry = list; entry; entry = entry->ai_next)
    result.addresses.push_back(SocketAddress::from_native(entry->ai_addr, entry->ai_addrlen));
  return result;
}

}  // namespace

Task<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port, Family family) {
  try {
    SocketAddress numeric = SocketAddress::ip(host, port);
    const bool wanted = family == Family::any || (family == Family::ipv4) == (numeric.family() == AF_INET);
    if (wanted) co_return std::vector<SocketAddress>{numeric};
  } catch (const std::invalid_argument&) {
    // not a numeric address: ask getaddrinfo
  }
  Lookup result = co_await to_thread(lookup, host, port, family);
  if (result.code != 0) throw ResolveError(result.code, host, ::gai_strerror(result.code));
  if (result.addresses.empty()) throw ResolveError(EAI_NONAME, host, "no address");
  co_return std::move(result.addresses);
}

}  // namespace gearbox::net
