// Job: the ThreadPool's unit of work, intrusive so that queueing one allocates nothing.
// Whoever submits work allocates a type that derives from Job (or embeds it first) and
// sets m_run; a worker that takes the job calls m_run(job), which runs it and then frees
// it: the job owns itself, and after m_run returns no one may touch it. m_next links it
// into the pool's injection queue; the per-worker deques hold plain Job pointers and
// leave it alone.
#pragma once

namespace gearbox::detail {

// How the job that just ran on this thread ended, for the pool that ran it to count
// (EngineStats). A job that produces a result (SubmitJob) sets it as it ends; the pool
// resets it to `completed` before each job, so jobs that never set it count as completed.
enum class JobOutcome : unsigned char { completed, failed, cancelled };
inline thread_local JobOutcome t_job_outcome = JobOutcome::completed;

struct Job {
  using RunFn = void (*)(Job*) noexcept;
  explicit Job(RunFn run) noexcept : m_run(run) {}
  RunFn m_run;            // runs the job, then frees it (the job owns itself)
  Job* m_next = nullptr;  // link in the pool's injection queue
};

}  // namespace gearbox::detail
