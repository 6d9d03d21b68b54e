// Shared by the tests of Channel (channel_test, channel_cancel_test): tasks that send to
// and receive from a Channel<int> after a delay on the test loop's manual clock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gearbox/sync/channel.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

namespace gearbox_test {

namespace gb = gearbox;

// Sleeps `delay`, then receives once and appends what it got (-1 for nullopt) to `got`.
inline gb::Task<void> receive_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, std::vector<int>& got) {
  co_await gb::sleep_for(delay);
  std::optional<int> value = co_await channel.receive();
  got.push_back(value ? *value : -1);
}

// Sleeps `delay`, then sends `value`; records "sent" or the name of the exception.
inline gb::Task<void> send_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, int value,
                               std::vector<std::string>& log) {
  co_await gb::sleep_for(delay);
  try {
    co_await channel.send(value);
    log.push_back("sent " + std::to_string(value));
  } catch (const gb::ChannelClosed&) {
    log.push_back("closed " + std::to_string(value));
  }
}

}  // namespace gearbox_test
