// The task registry: functions a ProcessPool worker can run, by name. A worker is a new
// process running the same executable, so it knows exactly the functions registered by
// static initialisers (or in main before gb::init): register at namespace scope.
//
//   int square(int x) { return x * x; }
//   GEARBOX_TASK(square);                                   // registered as "square"
//   ...
//   gb::Future<int> f = pool.submit(gb::task<square>, 7);   // type-checked call
//   gb::Future<int> g = pool.submit<int>("square", 7);      // by name, checked in the worker
//
// A task is a plain function (not a lambda with captures: a worker cannot receive them).
// Its parameters are decoded from the arguments and its result is encoded back with the
// codec (codec.hpp): each must be default-constructible and serializable by cereal. A
// task may return void. Exceptions it throws come back as RemoteError.
//
// Thread-safety: registering is for static initialisation (or single-threaded start-up);
// lookups are thread-safe once the pool exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <gearbox/process/codec.hpp>
#include <gearbox/process/shared_buffer.hpp>

namespace gearbox {

namespace detail {

// Any function pointer, stored type-erased; cast back to its real type to call it.
using AnyFunction = void (*)();

// Runs a task on encoded arguments: decodes them from `args` (descriptors come from the
// current DecodeScope), calls `function` and appends the encoded result to `result`
// (descriptors go to the current EncodeScope). Throws what the task or the codec throws.
using TaskInvoker = void (*)(AnyFunction function, std::string_view args, std::string& result);

struct TaskEntry {
  AnyFunction function = nullptr;
  TaskInvoker invoke = nullptr;        // arguments: a tuple of the parameters
  TaskInvoker invoke_chunk = nullptr;  // arguments: a vector of such tuples; result: a vector
};

// Throws std::logic_error for a name registered twice with different functions.
void register_task_entry(std::string name, TaskEntry entry);
// Thread-safe after static initialisation.
const TaskEntry* find_task(std::string_view name) noexcept;
// The name `function` was registered under, or empty.
std::string registered_name(AnyFunction function);

template <class F>
struct task_signature;
template <class R, class... P>
struct task_signature<R (*)(P...)> {
  using result = R;
  using arguments = std::tuple<std::decay_t<P>...>;
};
template <class R, class... P>
struct task_signature<R (*)(P...) noexcept> : task_signature<R (*)(P...)> {};

// What a task's result is stored as in a chunk (void becomes an empty placeholder).
template <class R>
using chunk_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

template <class F>
void invoke_task(AnyFunction function, std::string_view args, std::string& result) {
  using Sig = task_signature<F>;
  auto fn = reinterpret_cast<F>(function);
  auto arguments = decode_arguments<typename Sig::arguments>(args);
  if constexpr (std::is_void_v<typename Sig::result>) {
    std::apply(fn, std::move(arguments));
  } else {
    encode_into(result, std::apply(fn, std::move(arguments)));
  }
}

template <class F>
void invoke_task_chunk(AnyFunction function, std::string_view args, std::string& result) {
  using Sig = task_signature<F>;
  auto fn = reinterpret_cast<F>(function);
  auto chunk = decode_arguments<std::vector<typename Sig::arguments>>(args);
  std::vector<chunk_value_t<typename Sig::result>> results;
  results.reserve(chunk.size());
  for (auto& arguments : chunk) {
    if constexpr (std::is_void_v<typename Sig::result>) {
      std::apply(fn, std::move(arguments));
      results.emplace_back();
    } else {
      results.push_back(std::apply(fn, std::move(arguments)));
    }
  }
  encode_into(result, results);
}

}  // namespace detail

// The name of a registered function, as a value: pool.submit(gb::task<fn>, args...).
template <auto Fn>
struct TaskRef {
  static_assert(std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
                "gearbox: a process-pool task is a plain function");
  using signature = detail::task_signature<decltype(Fn)>;
  // The registered name; empty if fn was never registered (looked up once: register
  // before the first use, as GEARBOX_TASK does).
  const std::string& name() const {
    static const std::string registered = detail::registered_name(reinterpret_cast<detail::AnyFunction>(Fn));
    return registered;
  }
};
template <auto Fn>
inline constexpr TaskRef<Fn> task{};

// Registers `fn` under `name`; returns true (for use in a static initialiser).
template <class R, class... P>
bool register_task(std::string name, R (*fn)(P...)) {
  using F = R (*)(P...);
  detail::register_task_entry(std::move(name), {reinterpret_cast<detail::AnyFunction>(fn),
                                                &detail::invoke_task<F>, &detail::invoke_task_chunk<F>});
  return true;
}

}  // namespace gearbox

// GEARBOX_TASK(fn); at namespace scope: registers the function fn under the name "fn".
#define GEARBOX_TASK(fn)                                                                       \
  [[maybe_unused]] static const bool gearbox_task_registered_##fn = ::gearbox::register_task(#fn, &fn)
