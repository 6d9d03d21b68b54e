#include <gearbox/process/registry.hpp>

#include <unistd.h>

#include <map>
#include <mutex>

namespace gearbox::detail {

namespace {

struct Registry {
  std::mutex mutex;  // guards both maps (registration may race with a pool's lookups)
  std::map<std::string, TaskEntry, std::less<>> by_name;
  std::map<AnyFunction, std::string> by_function;
};

Registry& registry() {
  static Registry instance;  // built on first use: registration runs in static initialisers
  return instance;
}

}  // namespace

void register_task_entry(std::string name, TaskEntry entry) {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  auto [it, inserted] = r.by_name.try_emplace(name, entry);
  if (!inserted && it->second.function != entry.function)
    throw std::logic_error("gearbox: two different functions registered as task '" + name + "'");
  r.by_function.try_emplace(entry.function, std::move(name));
}

const TaskEntry* find_task(std::string_view name) noexcept {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : &it->second;  // entries are never removed
}

std::string registered_name(AnyFunction function) {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  auto it = r.by_function.find(function);
  return it == r.by_function.end() ? std::string{} : it->second;
}

DecodeScope::~DecodeScope() {
  for (int& fd : m_fds)
    if (fd >= 0) ::close(std::exchange(fd, -1));
  current() = m_previous;
}

int DecodeScope::take(std::uint32_t index) {
  if (index >= m_fds.size() || m_fds[index] < 0)
    throw std::runtime_error("gearbox: a SharedBuffer refers to a descriptor that did not arrive");
  return std::exchange(m_fds[index], -1);
}

}  // namespace gearbox::detail
