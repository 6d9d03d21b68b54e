// The codec, the wire format and SharedBuffer, without processes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "process/wire.hpp"

namespace gb = gearbox;
namespace wire = gearbox::detail::wire;

namespace {

struct Sample {
  int id = 0;
  std::vector<std::string> tags;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, tags);
  }
  bool operator==(const Sample&) const = default;
};

template <class T>
T round_trip(const T& value) {
  std::string bytes;
  gb::detail::encode_into(bytes, value);
  return gb::detail::decode<T>(bytes);
}

std::string task_frame(std::uint64_t id, std::string_view name, std::string_view args) {
  wire::FrameWriter writer{wire::Kind::calls};
  writer.add_call(id, name, args, 0, {}, 0);
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  EXPECT_EQ(writer.send(pair[0]), 0);
  std::string bytes(wire::k_max_frame, '\0');
  const ssize_t n = ::recv(pair[1], bytes.data(), bytes.size(), 0);
  bytes.resize(static_cast<std::size_t>(n));
  ::close(pair[0]);
  ::close(pair[1]);
  return bytes;
}

// Sends raw bytes as one message and parses what arrives as a frame of tasks.
std::optional<std::vector<wire::Record>> receive_raw(const std::string& bytes, wire::Frame& frame, int& status) {
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  EXPECT_EQ(::send(pair[0], bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  std::size_t size = 0;
  status = wire::receive(pair[1], frame, size);
  ::close(pair[0]);
  ::close(pair[1]);
  if (status != 1) return std::nullopt;
  return wire::parse(frame, size, wire::Kind::calls);
}

}  // namespace

TEST(Codec, values_round_trip_through_the_binary_archive) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(std::string("text")), "text");
  EXPECT_EQ(round_trip(std::map<int, std::string>{{1, "a"}}), (std::map<int, std::string>{{1, "a"}}));
  EXPECT_EQ(round_trip(std::make_tuple(1, 2.5, std::string("x"))), std::make_tuple(1, 2.5, std::string("x")));
  EXPECT_EQ(round_trip(Sample{7, {"a", "b"}}), (Sample{7, {"a", "b"}}));
}

TEST(Codec, bytes_left_over_after_a_value_are_an_error) {
  std::string bytes;
  gb::detail::encode_into(bytes, 1, 2);
  EXPECT_THROW((void)gb::detail::decode<int>(bytes), std::runtime_error);
}

TEST(Codec, truncated_bytes_are_an_error) {
  std::string bytes;
  gb::detail::encode_into(bytes, std::string("a longer string"));
  bytes.resize(bytes.size() - 3);
  EXPECT_THROW((void)gb::detail::decode<std::string>(bytes), std::exception);
}

TEST(Wire, a_frame_round_trips_its_records) {
  wire::Frame frame;
  int status = 0;
  auto records = receive_raw(task_frame(9, "name", "args"), frame, status);
  ASSERT_EQ(status, 1);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].id, 9u);
  EXPECT_EQ((*records)[0].name, "name");
  EXPECT_EQ((*records)[0].bytes, "args");
}

TEST(Wire, a_truncated_frame_is_rejected) {
  const std::string good = task_frame(1, "name", "args");
  for (std::size_t cut = 1; cut < good.size(); ++cut) {
    wire::Frame frame;
    int status = 0;
    auto records = receive_raw(good.substr(0, good.size() - cut), frame, status);
    EXPECT_FALSE(records) << "cut " << cut;
  }
}

TEST(Wire, a_frame_with_a_bad_magic_version_or_extra_bytes_is_rejected) {
  const std::string good = task_frame(1, "name", "args");
  for (std::size_t at : {std::size_t{0}, std::size_t{4}}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    wire::Frame frame;
    int status = 0;
    EXPECT_FALSE(receive_raw(bad, frame, status));
  }
  wire::Frame frame;
  int status = 0;
  EXPECT_FALSE(receive_raw(good + "x", frame, status));
}

TEST(Wire, a_length_that_points_past_the_frame_is_rejected) {
  std::string bad = task_frame(1, "name", "args");
  wire::CallRecord record;
  std::memcpy(&record, bad.data() + sizeof(wire::FrameHeader), sizeof record);
  record.args_size = 0xffffff00u;
  std::memcpy(bad.data() + sizeof(wire::FrameHeader), &record, sizeof record);
  wire::Frame frame;
  int status = 0;
  EXPECT_FALSE(receive_raw(bad, frame, status));
}

TEST(SharedBuffer, a_sealed_buffer_is_read_only_and_its_memfd_carries_every_seal) {
  auto buffer = gb::SharedBuffer::create(4096);
  buffer.writable()[10] = std::byte{42};
  buffer.seal();
  EXPECT_TRUE(buffer.sealed());
  EXPECT_EQ(buffer.bytes()[10], std::byte{42});
  EXPECT_THROW((void)buffer.writable(), std::logic_error);
  const int seals = ::fcntl(buffer.fd(), F_GET_SEALS);
  EXPECT_NE(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
  EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_EQ(::write(buffer.fd(), "x", 1), -1);
  EXPECT_EQ(::ftruncate(buffer.fd(), 0), -1);
  // No new writable mapping, and the buffer's own mapping is read-only ("r--s" in maps).
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, buffer.fd(), 0), MAP_FAILED);
  std::ifstream maps("/proc/self/maps");
  char start[32];
  std::snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(buffer.bytes().data()));
  std::string permissions;
  for (std::string line; std::getline(maps, line);)
    if (line.rfind(start, 0) == 0) permissions = line.substr(line.find(' ') + 1, 4);
  EXPECT_EQ(permissions, "r--s");
}

TEST(SharedBuffer, an_unsealed_memfd_is_refused_on_arrival) {
  const int fd = ::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100), 0);
  EXPECT_THROW((void)gb::SharedBuffer::adopt_sealed(fd), std::invalid_argument);  // and fd is closed
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST(SharedBuffer, an_unsealed_buffer_cannot_be_passed_to_a_task) {
  auto buffer = gb::SharedBuffer::create(16);
  gb::detail::EncodeScope scope;
  std::string bytes;
  EXPECT_THROW(gb::detail::encode_into(bytes, buffer), std::logic_error);
}

TEST(SharedBuffer, copies_share_the_memory_and_an_empty_buffer_is_fine) {
  auto buffer = gb::SharedBuffer::copy_of(std::as_bytes(std::span("abc", 3)));
  auto copy = buffer;
  EXPECT_EQ(copy.bytes().data(), buffer.bytes().data());
  EXPECT_EQ(copy.size(), 3u);
  auto empty = gb::SharedBuffer::create(0);
  empty.seal();
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.bytes().empty());
}
