// What a pool and the workers it spawns agree on besides the wire format: how a worker is
// started and what its exit codes mean.
#pragma once

namespace gearbox::detail {

// argv of a worker: <argv0> k_worker_flag k_protocol_tag <parent pid> [<initializer>]
inline constexpr const char* k_worker_flag = "--gearbox-process-worker";
inline constexpr const char* k_protocol_tag = "gbxp1";

inline constexpr int k_exit_orphan = 117;       // the parent was gone before the worker started
inline constexpr int k_exit_protocol = 118;     // the pool sent something the worker cannot read
inline constexpr int k_exit_initializer = 119;  // the pool's initializer failed

}  // namespace gearbox::detail
