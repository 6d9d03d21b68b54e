// resolve(host, port): the addresses of a host name, looked up off the loop.
//
//   std::vector<gb::net::SocketAddress> addresses = co_await gb::net::resolve("localhost", 80);
//
// getaddrinfo blocks (it may read files and ask DNS servers), so it runs on the blocking
// pool (see to_thread) while the loop goes on; a numeric address ("127.0.0.1", "::1") is
// answered at once without a thread. Addresses come in getaddrinfo's order of preference,
// one per (address, family), for stream sockets.
//
// Cancellable: a cancelled task throws Cancelled at once (the lookup finishes in the
// background and its answer is dropped). Errors: ResolveError with getaddrinfo's code
// (EAI_NONAME for an unknown host). Must be awaited from a task on a loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gearbox/net/address.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

enum class Family : unsigned char { any, ipv4, ipv6 };

[[nodiscard]] Task<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port, Family family = Family::any);

}  // namespace gearbox::net
