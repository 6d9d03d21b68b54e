// The registry of remote functions: the functions a ProcessPool worker can run, by name.
// A worker is a new process running the same executable, so it knows exactly the
// functions registered by static initialisers (or in main before gb::init): register at
// namespace scope.
//
//   namespace imaging { Image blur(Image img, int radius); }
//   GEARBOX_REMOTE(imaging::blur);                          // registered as "imaging::blur"
//   ...
//   gb::Future<Image> f = pool.submit(gb::remote<imaging::blur>, img, 3);  // type-checked
//   gb::Future<Image> g = pool.submit<Image>("blur", img, 3);  // by name, checked in the worker
//
// Vocabulary: a *remote function* is a registered plain function; a *call* is one
// invocation of it in a worker (submit, or one element of map). "Task" means a coroutine
// (gb::Task) everywhere in gearbox, never a call.
//
// Names: a function is registered under its fully qualified name, whatever the spelling
// of the macro's argument ("imaging::blur", "{anonymous}::square" for a function in an
// unnamed namespace), so two functions of the same name in different namespaces never
// collide. A lookup by name takes the qualified name or any unambiguous tail of it
// ("blur"); a tail that fits several functions is refused, naming them.
//
// A remote function is a plain function (not a lambda with captures: a worker cannot
// receive them). Its parameters are decoded from the arguments and its result is encoded
// back with the codec (codec.hpp): each must be default-constructible and serializable by
// cereal. It may return void. Exceptions it throws come back as RemoteError.
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

// Runs a remote function on encoded arguments: decodes them from `args` (descriptors come from the
// current DecodeScope), calls `function` and appends the encoded result to `result`
// (descriptors go to the current EncodeScope). Throws what the function or the codec throws.
using RemoteInvoker = void (*)(AnyFunction function, std::string_view args, std::string& result);

struct RemoteEntry {
  AnyFunction function = nullptr;
  RemoteInvoker invoke = nullptr;        // arguments: a tuple of the parameters
  RemoteInvoker invoke_chunk = nullptr;  // arguments: a vector of such tuples; result: a vector
};

// Throws std::logic_error for a name registered twice with different functions.
void register_remote_entry(std::string name, RemoteEntry entry);
// The function registered as `name`, or as a name of which `name` is the only tail that
// follows a "::" (see the header comment). Null if none or several: then `why`, if given,
// says which. Thread-safe after static initialisation.
const RemoteEntry* find_remote(std::string_view name, std::string* why = nullptr);
// The name `function` was registered under, or empty.
std::string registered_name(AnyFunction function);
// Every registered name, sorted (what a copy of the program on another machine must also
// have: the cluster's check that every node runs the same build).
std::vector<std::string> registered_names();

// The fully qualified name of the function Fn, as the compiler spells it.
std::string_view qualified_name_from(std::string_view pretty_function) noexcept;
template <auto Fn>
std::string_view qualified_name() noexcept {
  return qualified_name_from(__PRETTY_FUNCTION__);
}

template <class F>
struct remote_signature;
template <class R, class... P>
struct remote_signature<R (*)(P...)> {
  using result = R;
  using arguments = std::tuple<std::decay_t<P>...>;
};
template <class R, class... P>
struct remote_signature<R (*)(P...) noexcept> : remote_signature<R (*)(P...)> {};

// What a remote function's result is stored as in a chunk: R, or std::monostate for void.
template <class R>
using chunk_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

template <class F>
void invoke_remote(AnyFunction function, std::string_view args, std::string& result) {
  using Sig = remote_signature<F>;
  auto fn = reinterpret_cast<F>(function);
  auto arguments = decode_arguments<typename Sig::arguments>(args);
  if constexpr (std::is_void_v<typename Sig::result>) {
    std::apply(fn, std::move(arguments));
  } else {
    encode_into(result, std::apply(fn, std::move(arguments)));
  }
}

template <class F>
void invoke_remote_chunk(AnyFunction function, std::string_view args, std::string& result) {
  using Sig = remote_signature<F>;
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

// A remote function, as a value: pool.submit(gb::remote<fn>, args...).
template <auto Fn>
struct RemoteRef {
  static_assert(std::is_pointer_v<decltype(Fn)> && std::is_function_v<std::remove_pointer_t<decltype(Fn)>>,
                "gearbox: a remote function is a plain function (gb::remote<fn>, fn registered with GEARBOX_REMOTE)");
  using signature = detail::remote_signature<decltype(Fn)>;
  // The registered name; empty if fn was never registered (looked up once: register
  // before the first use, as GEARBOX_REMOTE does).
  const std::string& name() const {
    static const std::string registered = detail::registered_name(reinterpret_cast<detail::AnyFunction>(Fn));
    return registered;
  }
};
template <auto Fn>
inline constexpr RemoteRef<Fn> remote{};

// Registers `fn` under `name`; returns true (for use in a static initialiser).
template <class R, class... P>
bool register_remote(std::string name, R (*fn)(P...)) {
  using F = R (*)(P...);
  detail::register_remote_entry(std::move(name), {reinterpret_cast<detail::AnyFunction>(fn),
                                                  &detail::invoke_remote<F>, &detail::invoke_remote_chunk<F>});
  return true;
}
// Registers Fn under its fully qualified name.
template <auto Fn>
bool register_remote() {
  return register_remote(std::string(detail::qualified_name<Fn>()), Fn);
}

}  // namespace gearbox

#define GEARBOX_DETAIL_CONCAT_(a, b) a##b
#define GEARBOX_DETAIL_CONCAT(a, b) GEARBOX_DETAIL_CONCAT_(a, b)

// GEARBOX_REMOTE(fn); or GEARBOX_REMOTE(ns::fn); at namespace scope: registers the function
// under its fully qualified name (see the header comment).
#define GEARBOX_REMOTE(fn)                                                                        \
  [[maybe_unused]] static const bool GEARBOX_DETAIL_CONCAT(gearbox_remote_registered_, __COUNTER__) = \
      ::gearbox::register_remote<&fn>()
