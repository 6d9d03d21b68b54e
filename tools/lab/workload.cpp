#include "workload.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <gearbox/gearbox.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/net/tcp.hpp>
#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/registry.hpp>

#include "async_client.hpp"     // examples/07_cache
#include "blocking_client.hpp"
#include "slow_service.hpp"

namespace gearbox::lab {

// ---- names ----

const char* to_string(Work work) noexcept {
  switch (work) {
    case Work::io: return "io";
    case Work::sleep: return "sleep";
    case Work::cpu: return "cpu";
    case Work::mixed: return "mixed";
    case Work::db: return "db";
  }
  return "?";
}

const char* to_string(Model model) noexcept {
  switch (model) {
    case Model::sequential: return "sequential";
    case Model::threads: return "threads";
    case Model::async: return "async";
    case Model::processes: return "processes";
    case Model::async_processes: return "async+procs";
    case Model::async_cores: return "async-cores";
  }
  return "?";
}

std::optional<Work> parse_work(std::string_view name) noexcept {
  for (Work w : {Work::io, Work::sleep, Work::cpu, Work::mixed, Work::db})
    if (name == to_string(w)) return w;
  return std::nullopt;
}

std::optional<Model> parse_model(std::string_view name) noexcept {
  if (name == "seq" || name == "sequential") return Model::sequential;
  if (name == "threads") return Model::threads;
  if (name == "async") return Model::async;
  if (name == "procs" || name == "processes") return Model::processes;
  if (name == "async+procs") return Model::async_processes;
  if (name == "async-cores") return Model::async_cores;
  return std::nullopt;
}

std::vector<Model> parse_models(std::string_view list) {
  std::vector<Model> models;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    const std::optional<Model> model = parse_model(name);
    if (!model)
      throw std::invalid_argument("unknown model '" + std::string(name) +
                                  "' (models: seq, threads, async, procs, async+procs, async-cores)");
    if (std::find(models.begin(), models.end(), *model) == models.end()) models.push_back(*model);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  if (models.empty()) throw std::invalid_argument("no models given");
  return models;
}

std::optional<std::string> unfit(Model model, Work work) {
  if (model == Model::async_processes && !computes(work))
    return "async+procs offloads the computing part: use it with --work cpu or mixed";
  return std::nullopt;
}

bool waits(Work work) noexcept { return work != Work::cpu; }

bool computes(Work work) noexcept { return work == Work::cpu || work == Work::mixed; }

std::string db_key(int n) { return "gearbox-lab:" + std::to_string(n); }
std::string db_value(int n) { return "value of key " + std::to_string(n); }
int db_key_of_query(int task, std::uint64_t query) {
  return static_cast<int>((static_cast<std::uint64_t>(task) * 31 + query) % k_db_keys);
}

void preload_db_keys(std::uint16_t port) {
  cache::BlockingClient redis("127.0.0.1", port);
  std::vector<cache::Command> commands;
  for (int n = 0; n < k_db_keys; ++n) commands.push_back({"SET", db_key(n), db_value(n)});
  for (const cache::Reply& reply : redis.pipeline(commands)) cache::check_set(reply, "(preload)");
}

std::size_t pool_size(const WorkSpec& spec) noexcept {
  const std::size_t tasks = static_cast<std::size_t>(std::max(spec.tasks, 1));
  const std::size_t cores = std::max(spec.cores, 1u);
  // Blocked threads use no core, so a task that waits needs its own thread to overlap;
  // computing tasks cannot go faster than the cores.
  return waits(spec.work) ? tasks : std::min(tasks, cores);
}

// ---- the compute kernel ----

namespace {
constexpr std::uint64_t k_prime_base = 10'000'000;  // numbers of similar cost to test
}

std::uint64_t count_primes(std::uint64_t units) noexcept {
  std::uint64_t primes = 0;
  for (std::uint64_t n = k_prime_base; n < k_prime_base + units; ++n) {
    bool prime = n % 2 != 0;
    for (std::uint64_t d = 3; prime && d * d <= n; d += 2) prime = n % d != 0;
    primes += prime;
  }
  return primes;
}

double calibrate_units_per_second(int probe_ms) {
  using Clock = std::chrono::steady_clock;
  std::uint64_t units = 1000;
  for (;;) {
    const auto start = Clock::now();
    volatile std::uint64_t sink = count_primes(units);
    (void)sink;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (seconds * 1000 >= probe_ms || units > (std::uint64_t{1} << 40)) return static_cast<double>(units) / seconds;
    units *= 2;
  }
}

}  // namespace gearbox::lab

// ---- one task, blocking (sequential, threads, processes) ----

namespace {

using gearbox::lab::Work;

std::uint64_t lab_task_blocking(int work, int index, int port, int wait_ms, std::uint64_t units) {
  gearbox::trace::Span unit("task " + std::to_string(index));
  const Work kind = static_cast<Work>(work);
  if (kind == Work::io || kind == Work::mixed)
    gearbox::lab::wait_on_service_blocking(static_cast<std::uint16_t>(port), wait_ms);
  if (kind == Work::sleep) {
    gearbox::trace::Span waiting("sleep", gearbox::trace::SpanKind::wait);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
  if (kind == Work::db) {  // the checksum counts the GETs that found their value
    cache::BlockingClient redis("127.0.0.1", port);
    std::uint64_t found = 0;
    for (std::uint64_t q = 0; q < units; ++q) {
      const int key = gearbox::lab::db_key_of_query(index, q);
      found += redis.get(gearbox::lab::db_key(key)) == gearbox::lab::db_value(key);
    }
    return found;
  }
  return gearbox::lab::computes(kind) ? gearbox::lab::count_primes(units) : 0;
}

// The compute part alone (async+procs offloads it).
std::uint64_t lab_compute(int index, std::uint64_t units) {
  gearbox::trace::Span unit("task " + std::to_string(index));
  return gearbox::lab::count_primes(units);
}

}  // namespace

GEARBOX_REMOTE(lab_task_blocking);
GEARBOX_REMOTE(lab_compute);

namespace gearbox::lab {
namespace {

using Clock = std::chrono::steady_clock;

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// ---- one task, async ----

Task<void> wait_on_service(std::uint16_t port, int ms) {
  net::TcpStream stream = co_await net::TcpStream::connect(net::SocketAddress::loopback(port));
  const std::string request = slow_request(ms);
  co_await stream.write_all(request);
  net::BufferedReader reader(stream, {.max_line = 64});
  std::optional<std::string_view> answer = co_await reader.read_line();
  if (!answer || answer->substr(0, 5) != "DONE ")
    throw std::runtime_error("the slow service answered: " + std::string(answer.value_or("(nothing)")));
}

Task<std::uint64_t> db_task_async(std::uint16_t port, int index, std::uint64_t queries) {
  cache::AsyncClient redis = co_await cache::AsyncClient::connect("127.0.0.1", port);
  std::uint64_t found = 0;
  for (std::uint64_t q = 0; q < queries; ++q) {
    const int key = db_key_of_query(index, q);
    found += co_await redis.get(db_key(key)) == db_value(key);
  }
  co_return found;
}

Task<std::uint64_t> lab_task_async(const WorkSpec& spec, int index, ProcessPool* offload) {
  trace::name_task("task " + std::to_string(index));
  if (spec.work == Work::db) co_return co_await db_task_async(spec.port, index, spec.units);
  if (spec.work == Work::io || spec.work == Work::mixed) co_await wait_on_service(spec.port, spec.wait_ms);
  if (spec.work == Work::sleep) co_await sleep_for(std::chrono::milliseconds(spec.wait_ms));
  if (!computes(spec.work)) co_return 0;
  if (!offload) co_return count_primes(spec.units);  // on the loop's own thread
  Future<std::uint64_t> computed = offload->submit(gearbox::remote<lab_compute>, index, spec.units);
  const std::uint64_t primes = co_await computed;
  co_return primes;
}

Task<ModelRun> run_all_async(const WorkSpec& spec, ProcessPool* offload) {
  trace::name_task("main");  // not a "task <i>" of the timeline
  std::vector<JoinHandle<std::uint64_t>> running;
  for (int i = 1; i <= spec.tasks; ++i) running.push_back(spawn(lab_task_async(spec, i, offload)));
  ModelRun run;
  for (auto& task : running) {
    try {
      run.checksum += co_await task;
      ++run.tasks_done;
    } catch (...) {
      run.errors.push_back(describe(std::current_exception()));
    }
  }
  co_return run;
}

template <class Submit>
void collect(ModelRun& run, int tasks, Submit&& submit) {
  std::vector<Future<std::uint64_t>> results;
  for (int i = 1; i <= tasks; ++i) results.push_back(submit(i));
  for (auto& result : results) {
    try {
      run.checksum += result.get();
      ++run.tasks_done;
    } catch (...) {
      run.errors.push_back(describe(std::current_exception()));
    }
  }
}

}  // namespace

ModelRun run_model(const WorkSpec& spec, Model model) {
  if (const std::optional<std::string> why = unfit(model, spec.work)) throw std::invalid_argument(*why);
  const int work = static_cast<int>(spec.work);
  const int port = spec.port;
  const auto start = Clock::now();
  ModelRun run;
  switch (model) {
    case Model::sequential:
      for (int i = 1; i <= spec.tasks; ++i) {
        try {
          run.checksum += lab_task_blocking(work, i, port, spec.wait_ms, spec.units);
          ++run.tasks_done;
        } catch (...) {
          run.errors.push_back(describe(std::current_exception()));
        }
      }
      break;
    case Model::threads: {
      ThreadPool pool{{.workers = pool_size(spec)}};
      collect(run, spec.tasks, [&](int i) { return pool.submit(lab_task_blocking, work, i, port, spec.wait_ms, spec.units); });
      pool.shutdown(ShutdownMode::wait);
      break;
    }
    case Model::async: {
      Loop loop;
      run = loop.run(run_all_async(spec, nullptr));
      break;
    }
    case Model::async_cores: {
      // The same task code, one worker per core. Its compute is one slice per task, so
      // the runtime's blocking monitor counts each: that is the point being shown.
      Runtime runtime{{.threads = std::max(spec.cores, 1u)}};
      run = runtime.run(run_all_async(spec, nullptr));
      break;
    }
    case Model::processes: {
      ProcessPool pool{{.workers = pool_size(spec)}};
      collect(run, spec.tasks, [&](int i) {
        return pool.submit(gearbox::remote<lab_task_blocking>, work, i, port, spec.wait_ms, spec.units);
      });
      pool.shutdown(ShutdownMode::wait);
      break;
    }
    case Model::async_processes: {
      ProcessPool pool{{.workers = std::max(spec.cores, 1u)}};
      {
        Loop loop;
        run = loop.run(run_all_async(spec, &pool));
      }
      pool.shutdown(ShutdownMode::wait);
      break;
    }
  }
  run.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

}  // namespace gearbox::lab
