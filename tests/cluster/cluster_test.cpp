// gb::Cluster under mpirun (tests/CMakeLists.txt launches it: 3 ranks, TCP between them),
// and without: rank 0 runs these tests, ranks 1 and 2 are agents inside gb::init. One
// Cluster per run of the program (MPI is initialised once per process), so main makes it
// and the tests share it.
//
// --expect-refusal: rank 0 only checks that making the Cluster fails because a node runs
// another build (the MPMD run with tests/cluster/cluster_other_agent.cpp as rank 2), and
// prints why; the test passes on that message.
#include <gearbox/cluster.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gearbox/process/init.hpp>

#include <gtest/gtest.h>

namespace gb = gearbox;

namespace {

gb::Cluster* g_cluster = nullptr;

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

class Cluster : public testing::Test {
protected:
  void SetUp() override {
    if (!g_cluster) GTEST_SKIP() << "not launched by mpirun: see the cluster.* tests";
  }
};

TEST_F(Cluster, every_agent_said_hello_with_its_host_and_pid) {
  const auto& nodes = g_cluster->nodes();
  ASSERT_EQ(nodes.size(), 2u);
  std::set<long> pids;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_EQ(nodes[i].rank, static_cast<int>(i) + 1);
    EXPECT_EQ(nodes[i].host, host_name());  // one machine here
    EXPECT_NE(nodes[i].pid, static_cast<long>(::getpid()));
    EXPECT_EQ(::kill(static_cast<pid_t>(nodes[i].pid), 0), 0) << "the agent's process is not there";
    pids.insert(nodes[i].pid);
  }
  EXPECT_EQ(pids.size(), 2u);
}

TEST_F(Cluster, a_ping_goes_to_each_agent_and_back) {
  std::vector<long> us;
  for (int round = 0; round < 100; ++round) {
    for (int rank : {1, 2}) {
      const auto took = g_cluster->ping(rank);
      EXPECT_GT(took.count(), 0);
      us.push_back(static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
    }
  }
  std::sort(us.begin(), us.end());
  std::printf("ping round trips: median %ld us, p90 %ld us\n", us[us.size() / 2], us[us.size() * 9 / 10]);
  EXPECT_THROW((void)g_cluster->ping(0), std::out_of_range);
  EXPECT_THROW((void)g_cluster->ping(3), std::out_of_range);
}

TEST_F(Cluster, a_second_cluster_in_one_run_is_refused) {
  try {
    gb::Cluster second;
    ADD_FAILURE() << "a second Cluster was made";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("one per run"), std::string::npos) << e.what();
  }
}

TEST(ClusterWithoutMpirun, the_program_runs_locally_and_a_cluster_is_refused_with_a_reason) {
  if (gb::Cluster::launched_by_mpirun()) GTEST_SKIP() << "launched by mpirun";
  try {
    gb::Cluster cluster;
    ADD_FAILURE() << "a Cluster was made without mpirun";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("not started by mpirun"), std::string::npos) << e.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  gb::init(argc, argv);  // ranks > 0: agents, which exit from here when the Cluster ends
  const bool expect_refusal = argc >= 2 && std::strcmp(argv[argc - 1], "--expect-refusal") == 0;
  if (expect_refusal) {
    try {
      gb::Cluster cluster;
      std::printf("the cluster was made: no node was refused\n");
      return 1;
    } catch (const std::runtime_error& e) {
      std::printf("%s\n", e.what());
      return 0;
    }
  }
  testing::InitGoogleTest(&argc, argv);
  std::unique_ptr<gb::Cluster> cluster;
  if (gb::Cluster::launched_by_mpirun()) {
    cluster = std::make_unique<gb::Cluster>();
    g_cluster = cluster.get();
  }
  const int failed = RUN_ALL_TESTS();
  g_cluster = nullptr;
  cluster.reset();  // the agents exit; MPI is finalised
  return failed;
}
