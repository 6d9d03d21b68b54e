// Plain socket calls shared by the socket types: each throws IoError named after the call.
#pragma once

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/net/address.hpp>

namespace gearbox::net::sys {

// A non-blocking, close-on-exec socket.
int open_socket(int family, int type);
void set_option(int fd, int level, int name, int value, const char* operation);
SocketAddress local_address_of(int fd);
SocketAddress peer_address_of(int fd);
// Binds `fd` (closing it on failure) and, for stream sockets, listens.
void bind_socket(int fd, const SocketAddress& address, int backlog_or_negative);

}  // namespace gearbox::net::sys
