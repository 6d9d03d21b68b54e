// Shared by the tests of Channel (channel_test, channel_cancel_test): tasks that send to
// and receive from a Channel<int> after a delay (on the test loop's manual clock, or real
// on the runtime), and either report what happened or append it to a log.
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

// Sleeps `delay`, then receives once: the value, or -1 for nullopt.
inline gb::Task<int> receive_after(gb::Channel<int>& channel, std::chrono::milliseconds delay) {
  co_await gb::sleep_for(delay);
  std::optional<int> value = co_await channel.receive();
  co_return value ? *value : -1;
}

// receive_after, appending what it got to `got` (one writer at a time: the test loop's).
inline gb::Task<void> receive_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, std::vector<int>& got) {
  got.push_back(co_await receive_after(channel, delay));
}

// Sleeps `delay`, then sends `value`: "sent <value>", or "closed <value>" if the channel
// was closed before the send took place.
inline gb::Task<std::string> send_after(gb::Channel<int>& channel, std::chrono::milliseconds delay, int value) {
  co_await gb::sleep_for(delay);
  std::string outcome = "sent ";
  try {
    co_await channel.send(int{value});
  } catch (const gb::ChannelClosed&) {
    outcome = "closed ";
  }
  co_return outcome + std::to_string(value);
}

// send_after, appending what happened to `log` (one writer at a time: the test loop's).
inline gb::Task<void> send_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, int value,
                               std::vector<std::string>& log) {
  log.push_back(co_await send_after(channel, delay, value));
}

}  // namespace gearbox_test
