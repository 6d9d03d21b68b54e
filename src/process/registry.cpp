#include <gearbox/process/registry.hpp>

#include <unistd.h>

#include <map>
#include <mutex>

namespace gearbox::detail {

namespace {

struct Registry {
  std::mutex mutex;  // guards both maps (registration may race with a pool's lookups)
  std::map<std::string, RemoteEntry, std::less<>> by_name;
  std::map<AnyFunction, std::string> by_function;
};

Registry& registry() {
  static Registry instance;  // built on first use: registration runs in static initialisers
  return instance;
}

}  // namespace

void register_remote_entry(std::string name, RemoteEntry entry) {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  auto [it, inserted] = r.by_name.try_emplace(name, entry);
  if (!inserted && it->second.function != entry.function)
    throw std::logic_error("gearbox: two different functions registered as remote function '" + name + "'");
  r.by_function.try_emplace(entry.function, std::move(name));
}

const RemoteEntry* find_remote(std::string_view name, std::string* why) {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  if (auto it = r.by_name.find(name); it != r.by_name.end()) return &it->second;  // entries are never removed
  // A tail of a qualified name: "blur" for "imaging::blur". Linear, but only for names
  // that are not registered as given (the type-checked remote<fn> always sends the full one).
  const RemoteEntry* found = nullptr;
  std::string candidates;
  for (const auto& [registered, entry] : r.by_name) {
    if (registered.size() <= name.size() + 2 || !registered.ends_with(name)) continue;
    if (registered.compare(registered.size() - name.size() - 2, 2, "::") != 0) continue;
    candidates += (candidates.empty() ? "" : ", ") + registered;
    found = found ? nullptr : &entry;
    if (!found) break;
  }
  if (found) return found;
  if (why) {
    if (candidates.empty())
      *why = "no remote function is registered as '" + std::string(name) + "' (GEARBOX_REMOTE)";
    else
      *why = "'" + std::string(name) + "' names several remote functions: " + candidates + "; use the qualified name";
  }
  return nullptr;
}

std::vector<std::string> registered_names() {
  Registry& r = registry();
  std::lock_guard lock{r.mutex};
  std::vector<std::string> names;
  names.reserve(r.by_name.size());
  for (const auto& entry : r.by_name) names.push_back(entry.first);  // a std::map: sorted
  return names;
}

std::string_view qualified_name_from(std::string_view pretty_function) noexcept {
  // g++: "... qualified_name() [with auto Fn = ns::fn; ...]"; clang: "... [Fn = &ns::fn]".
  constexpr std::string_view marker = "Fn = ";
  const std::size_t at = pretty_function.find(marker);
  if (at == std::string_view::npos) return pretty_function;
  std::string_view name = pretty_function.substr(at + marker.size());
  name = name.substr(0, name.find_first_of(";]"));
  if (name.starts_with('&')) name.remove_prefix(1);
  return name;
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
