// Another build of tests/cluster/cluster_test.cpp's program, as far as a Cluster can tell:
// it registers a remote function that program lacks. Run as an agent rank (mpirun's MPMD
// form, see tests/CMakeLists.txt), it must be refused by rank 0 by name.
#include <gearbox/cluster.hpp>
#include <gearbox/process/init.hpp>
#include <gearbox/process/registry.hpp>

namespace cluster_other {
int only_in_the_other_build(int x) { return x + 1; }
}  // namespace cluster_other
GEARBOX_REMOTE(cluster_other::only_in_the_other_build);

int main(int argc, char** argv) {
  gearbox::init(argc, argv);  // an agent: exits from here
  return gearbox::Cluster::launched_by_mpirun() ? 1 : 0;  // (links the agent: gearbox::cluster)
}
