// Everything in the gearbox::gearbox library, in one include: the async engine (tasks, the
// loop, time, combinators, sync), the thread engine (Future, ThreadPool, to_thread), the
// process engine (ProcessPool, SharedBuffer, init), sockets and OS I/O (net/, os/), and
// tracing.
//
//   #include <gearbox/gearbox.hpp>
//   namespace gb = gearbox;
//
// Not here: the HTTP component (<gearbox/http.hpp>, linked as gearbox::http), which needs
// libcurl and http-parser. The process pool's codec is built on cereal (header-only), so
// this header includes cereal's archives; a translation unit that does not want them
// includes the single headers it uses instead (every header stands alone).
#pragma once
#include <gearbox/clock.hpp>
#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/net/address.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/net/resolve.hpp>
#include <gearbox/net/stream.hpp>
#include <gearbox/net/tcp.hpp>
#include <gearbox/net/udp.hpp>
#include <gearbox/net/unix.hpp>
#include <gearbox/os/file.hpp>
#include <gearbox/os/process.hpp>
#include <gearbox/os/signal.hpp>
#include <gearbox/process/init.hpp>
#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/registry.hpp>
#include <gearbox/process/shared_buffer.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/channel.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/sync/mutex.hpp>
#include <gearbox/sync/select.hpp>
#include <gearbox/sync/semaphore.hpp>
#include <gearbox/sync/spin_lock.hpp>
#include <gearbox/task.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/thread_pool.hpp>
#include <gearbox/time.hpp>
#include <gearbox/to_thread.hpp>
#include <gearbox/trace.hpp>
