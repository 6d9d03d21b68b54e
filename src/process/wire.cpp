#include "process/wire.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace gearbox::detail::wire {

namespace {

template <class T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

}  // namespace

void FrameWriter::reset(Kind kind) {
  m_bytes.clear();
  m_fds.clear();
  m_count = 0;
  const FrameHeader header{k_magic, k_version, static_cast<std::uint16_t>(kind), 0, 0};
  append(m_bytes, header);
}

void FrameWriter::add_call(std::uint64_t id, std::string_view name, std::string_view args, std::size_t spilled_size,
                           std::span<const int> fds, std::uint16_t flags) {
  const std::size_t size = flags & k_spilled ? spilled_size : args.size();
  const CallRecord record{id, static_cast<std::uint32_t>(name.size()), static_cast<std::uint32_t>(size),
                          static_cast<std::uint16_t>(fds.size()), flags, 0};
  append(m_bytes, record);
  m_bytes.append(name);
  if (!(flags & k_spilled)) m_bytes.append(args);
  m_fds.insert(m_fds.end(), fds.begin(), fds.end());
  ++m_count;
}

void FrameWriter::add_result(std::uint64_t id, Status status, std::string_view bytes, std::size_t spilled_size,
                             std::span<const int> fds, std::uint16_t flags, std::uint32_t run_us) {
  const std::size_t size = flags & k_spilled ? spilled_size : bytes.size();
  const ResultRecord record{id, static_cast<std::uint32_t>(status), static_cast<std::uint32_t>(size),
                            static_cast<std::uint16_t>(fds.size()), flags, run_us};
  append(m_bytes, record);
  if (!(flags & k_spilled)) m_bytes.append(bytes);
  m_fds.insert(m_fds.end(), fds.begin(), fds.end());
  ++m_count;
}

int FrameWriter::send(int socket) {
  FrameHeader header;
  std::memcpy(&header, m_bytes.data(), sizeof header);
  header.count = m_count;
  header.fd_count = static_cast<std::uint32_t>(m_fds.size());
  std::memcpy(m_bytes.data(), &header, sizeof header);

  iovec iov{m_bytes.data(), m_bytes.size()};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  std::vector<char> control;
  if (!m_fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * m_fds.size()), 0);
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * m_fds.size());
    std::memcpy(CMSG_DATA(cmsg), m_fds.data(), sizeof(int) * m_fds.size());
  }
  for (;;) {
    if (::sendmsg(socket, &message, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

void Frame::close_fds() noexcept {
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  fds.clear();
}

int receive(int socket, Frame& frame, std::size_t& size) {
  frame.close_fds();
  iovec iov{frame.bytes.data(), frame.bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&message); cmsg; cmsg = CMSG_NXTHDR(&message, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const std::size_t first = frame.fds.size();
    frame.fds.resize(first + count);
    std::memcpy(frame.fds.data() + first, CMSG_DATA(cmsg), count * sizeof(int));
  }
  if (n == 0 && frame.fds.empty()) return 0;
  if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return -EBADMSG;
  size = static_cast<std::size_t>(n);
  if (size < sizeof(FrameHeader)) return -EBADMSG;
  std::memcpy(&frame.header, frame.bytes.data(), sizeof frame.header);
  if (frame.header.magic != k_magic || frame.header.version != k_version || frame.header.fd_count != frame.fds.size())
    return -EBADMSG;
  return 1;
}

std::optional<std::vector<Record>> parse(Frame& frame, std::size_t size, Kind kind) {
  if (frame.header.kind != static_cast<std::uint16_t>(kind)) return std::nullopt;
  std::vector<Record> records;
  const char* data = frame.bytes.data();
  std::size_t at = sizeof(FrameHeader);
  std::size_t fd_at = 0;
  if (frame.header.count > size) return std::nullopt;  // a record takes at least a byte
  records.reserve(frame.header.count);
  for (std::uint32_t i = 0; i < frame.header.count; ++i) {
    Record record;
    std::size_t name_size = 0;
    std::size_t body_size = 0;
    std::uint16_t fd_count = 0;
    if (kind == Kind::calls) {
      CallRecord call;
      if (size - at < sizeof call) return std::nullopt;
      std::memcpy(&call, data + at, sizeof call);
      at += sizeof call;
      record.id = call.id;
      record.flags = call.flags;
      name_size = call.name_size;
      body_size = call.args_size;
      fd_count = call.fd_count;
    } else {
      ResultRecord result;
      if (size - at < sizeof result) return std::nullopt;
      std::memcpy(&result, data + at, sizeof result);
      at += sizeof result;
      record.id = result.id;
      record.status = result.status;
      record.flags = result.flags;
      record.run_us = result.run_us;
      body_size = result.size;
      fd_count = result.fd_count;
    }
    const bool spilled = record.flags & k_spilled;
    if (fd_count > frame.fds.size() - fd_at || (spilled && fd_count == 0)) return std::nullopt;
    record.fds = std::span<int>(frame.fds.data() + fd_at, fd_count);
    fd_at += fd_count;
    if (name_size > size - at) return std::nullopt;
    record.name = std::string_view(data + at, name_size);
    at += name_size;
    if (spilled) {
      record.spilled_size = static_cast<std::uint32_t>(body_size);
    } else {
      if (body_size > size - at) return std::nullopt;
      record.bytes = std::string_view(data + at, body_size);
      at += body_size;
    }
    records.push_back(record);
  }
  if (at != size || fd_at != frame.fds.size()) return std::nullopt;
  return records;
}

}  // namespace gearbox::detail::wire
