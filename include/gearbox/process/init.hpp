// gb::init: the first statement of main in a program that uses a ProcessPool.
//
//   int main(int argc, char** argv) {
//     gb::init(argc, argv);   // a worker never returns from here
//     gb::ProcessPool pool;
//     ...
//   }
//
// A ProcessPool starts its workers by running the program's own executable
// (/proc/self/exe) with a marker argument. In such a process init() never returns: it
// serves the calls its pool sends (by the names in the registry of remote functions) and then exits.
// In any other process it returns at once. A ProcessPool refuses to start (logic_error)
// in a program that has not called init(), rather than spawning copies of main.
//
// A worker: keeps only the descriptor of its socket (and stdin/stdout/stderr); asks the
// kernel to SIGKILL it when its parent dies (PR_SET_PDEATHSIG) and checks right after that
// its parent is still the pool that started it; ignores SIGINT (Ctrl-C at a terminal
// reaches the whole process group: the parent decides what happens to the pool). It
// exits with _exit when its pool closes the socket, so no exit-time destructors or leak
// checks run in it.
#pragma once

namespace gearbox {

void init(int argc, char** argv);

// True in a process on which init() has been called (and returned: never in a worker).
bool initialized() noexcept;

}  // namespace gearbox
