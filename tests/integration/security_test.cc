// The security suite (issue 15, "Trust boundaries"): a real coordinator on 127.0.0.1, called through the client
// library the worker and `cadenza` use, attacked as the issue describes. Every attack is refused with the right code
// and leaves the job's state and results untouched. Token roles (user, worker, admin; the old two-column line means
// user), lease ownership, what a group learns of other groups' tasks, path confinement at submit, and the worker's
// second look at a task's paths (a real `cadenza-worker` refusing a run folder that became a symlink out of the root).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/client.h"
#include "coordinator/server.h"
#include "tests/support/loopback_coordinator.h"
#include "tests/support/shell.h"
#include "worker/task_paths.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using loopback::Client;
using loopback::Dir;
using loopback::RegisterGroup;

// alice: the old two-column form (role user); bob: user; two worker tokens of different owners; an admin.
const char* kAlice = "alice-token-0001";
const char* kBob = "bob-token-0002";
const char* kWorker = "worker-token-0003";
const char* kOtherWorker = "other-worker-token-0004";
const char* kAdmin = "admin-token-0005";

std::string Tokens() {
  return std::string("# the old two-column form: role user\n") + kAlice + " alice\n" + kBob + " bob user\n" + kWorker +
         " cluster worker\n" + kOtherWorker + " intruder worker\n" + kAdmin + " root admin\n";
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.File("data");
    runs_ = dir_.File("runs");
    fs::create_directories(data_ + "/ds");
    fs::create_directories(runs_);
    Start([](CoordinatorConfig*) {});
  }
  // Starts the coordinator with `edit` applied to the test config (roots: <dir>/data, <dir>/runs).
  template <typename Edit>
  void Start(Edit edit) {
    CoordinatorConfig c;
    c.listen = "127.0.0.1:0";
    c.database = dir_.File("coordinator.db");
    c.tokens_file = dir_.Write("tokens.txt", Tokens());
    c.heartbeat.period_ms = 100;
    c.heartbeat.reaper_interval_ms = 20;
    c.scheduler.lease_ms = 5000;
    c.idle_poll_ms = 10;
    c.paths.data_roots = {data_};
    c.paths.output_root = runs_;
    edit(&c);
    server_.reset();
    auto s = CoordinatorServer::Start(c);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
    target_ = "127.0.0.1:" + std::to_string(server_->port());
    alice_ = Client(target_, kAlice);
    bob_ = Client(target_, kBob);
    worker_ = Client(target_, kWorker);
    intruder_ = Client(target_, kOtherWorker);
    admin_ = Client(target_, kAdmin);
    ASSERT_TRUE(alice_->WaitHealthy(5000).ok());
  }
  std::string Yaml(const std::string& name = "e2e") const {
    return "name: " + name + "\ndataset: " + data_ + "/ds\nout: " + runs_ + "/" + name +
           "\nmodel: {family: lstm, d_model: 32, layers: 1, hidden: 32}\ntrain: {seq_len: 32, steps: 5, seed: 3}\n";
  }
  Status Submit(CoordinatorClient* c, const std::string& yaml, int64_t* job = nullptr) {
    v1::SubmitExperimentRequest req;
    req.mutable_experiment()->set_experiment_yaml(yaml);
    req.mutable_experiment()->set_samples(2);
    v1::SubmitResponse resp;
    Status s = c->SubmitExperiment(req, &resp);
    if (job) *job = resp.job_ids_size() ? resp.job_ids(0) : 0;
    return s;
  }
  int64_t SubmitOk(CoordinatorClient* c, const std::string& name = "e2e") {
    int64_t job = 0;
    Status s = Submit(c, Yaml(name), &job);
    EXPECT_TRUE(s.ok()) << s.message();
    return job;
  }
  v1::Job Job(int64_t id) {
    v1::Job j;
    Status s = admin_->GetJob(id, &j);
    EXPECT_TRUE(s.ok()) << s.message();
    return j;
  }
  int ResultRows(int64_t job) {
    v1::QueryResultsRequest q;
    q.set_job_id(job);
    q.set_kind(v1::TASK_KIND_TRAIN);
    v1::QueryResultsResponse rows;
    EXPECT_TRUE(alice_->QueryResults(q, &rows).ok());
    return rows.rows_size();
  }
  // The group `c` registered (one rank) leases the job's train task.
  v1::Task LeaseTrain(CoordinatorClient* c, v1::WorkerRef* ref) {
    ref->set_group_id(RegisterGroup(c, 1));
    v1::LeaseTaskRequest lr;
    *lr.mutable_worker() = *ref;
    v1::LeaseTaskResponse leased;
    Status s = c->LeaseTask(lr, &leased);
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(leased.leased());
    return leased.task();
  }

  Dir dir_;
  std::string data_, runs_, target_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<CoordinatorClient> alice_, bob_, worker_, intruder_, admin_;
};

void ExpectDenied(const Status& s, const std::string& needed, const char* what) {
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << what << ": " << s.message();
  EXPECT_NE(s.message().find(needed), std::string::npos) << what << ": " << s.message();
}

// ---- roles ----

TEST_F(SecurityTest, AUserTokenCannotServeTasks) {
  const int64_t job = SubmitOk(alice_.get());  // alice's line has two columns: role user, so she may submit
  v1::RegisterWorkerGroupRequest reg;
  reg.mutable_group()->set_ranks(1);
  v1::RegisterWorkerGroupResponse rr;
  ExpectDenied(alice_->RegisterWorkerGroup(reg, &rr),
               "RegisterWorkerGroup needs a worker or admin token; this token (user 'alice') has role user", "register");
  // Even naming a real group (the worker's), a user token can do none of a worker's calls.
  v1::WorkerRef ref;
  ref.set_group_id(RegisterGroup(worker_.get(), 1));
  v1::LeaseTaskRequest lr;
  *lr.mutable_worker() = ref;
  v1::LeaseTaskResponse leased;
  ExpectDenied(bob_->LeaseTask(lr, &leased), "LeaseTask needs a worker or admin token", "lease");
  ASSERT_TRUE(worker_->LeaseTask(lr, &leased).ok());
  ASSERT_TRUE(leased.leased());
  v1::HeartbeatRequest hb;
  *hb.mutable_worker() = ref;
  v1::HeartbeatResponse hr;
  ExpectDenied(alice_->Heartbeat(hb, &hr), "Heartbeat needs a worker or admin token", "heartbeat");
  v1::ReportProgressRequest pr;
  *pr.mutable_worker() = ref;
  pr.mutable_task()->set_task_id(leased.task().task_id());
  pr.mutable_task()->set_attempt(leased.task().attempt());
  v1::ReportProgressResponse presp;
  ExpectDenied(alice_->ReportProgress(pr, &presp), "ReportProgress needs a worker or admin token", "progress");
  v1::CompleteTaskRequest forged;  // the forged completion: /etc/passwd as the checkpoint
  *forged.mutable_worker() = ref;
  *forged.mutable_task() = pr.task();
  (*forged.mutable_result()->mutable_metrics())["val_nll"] = 0.001;
  forged.mutable_result()->set_checkpoint("/etc/passwd");
  v1::CompleteTaskResponse ack;
  ExpectDenied(alice_->CompleteTask(forged, &ack), "CompleteTask needs a worker or admin token", "complete");
  v1::FailTaskRequest fail;
  *fail.mutable_worker() = ref;
  *fail.mutable_task() = pr.task();
  v1::FailTaskResponse fr;
  ExpectDenied(bob_->FailTask(fail, &fr), "FailTask needs a worker or admin token", "fail");
  // The holder itself cannot name a file outside the run folder either.
  Status outside = worker_->CompleteTask(forged, &ack);
  EXPECT_EQ(outside.code(), StatusCode::kInvalidArgument) << outside.message();
  EXPECT_NE(outside.message().find("result.checkpoint: /etc/passwd is outside the job's run folder"), std::string::npos) << outside.message();
  const v1::Job j = Job(job);
  EXPECT_EQ(j.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(j.counts().succeeded(), 0);
  EXPECT_EQ(ResultRows(job), 0) << "no forged result";
}

TEST_F(SecurityTest, AWorkerTokenCannotSubmitCancelOrRead) {
  const int64_t job = SubmitOk(alice_.get());
  int64_t none = 0;
  ExpectDenied(Submit(worker_.get(), Yaml("w"), &none),
               "SubmitExperiment needs a user or admin token; this token (user 'cluster') has role worker", "submit");
  v1::CancelJobResponse cr;
  ExpectDenied(worker_->CancelJob(job, &cr), "CancelJob needs a user or admin token", "cancel");
  v1::Job j;
  ExpectDenied(worker_->GetJob(job, &j), "GetJob needs a user or admin token", "get");
  v1::ListJobsResponse jobs;
  ExpectDenied(worker_->ListJobs({}, &jobs), "ListJobs needs a user or admin token", "list");
  v1::QueryResultsResponse rows;
  ExpectDenied(worker_->QueryResults({}, &rows), "QueryResults needs a user or admin token", "results");
  ASSERT_TRUE(alice_->ListJobs({}, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 1) << "the worker's submission was not stored";
  EXPECT_EQ(jobs.jobs(0).state(), v1::JOB_STATE_QUEUED) << "nor its cancellation applied";
  // The HTTP API reads with the same tokens: users and admins read, a worker token is refused naming the role.
  ASSERT_GT(server_->http_port(), 0);
  httplib::Client http("127.0.0.1", server_->http_port());
  auto as = [](const char* token) { return httplib::Headers{{"Authorization", std::string("Bearer ") + token}}; };
  auto denied = http.Get("/api/v1/jobs", as(kWorker));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_NE(denied->body.find("GET /api/v1/jobs needs a user or admin token"), std::string::npos) << denied->body;
  for (const char* token : {kAlice, kAdmin}) {
    auto ok = http.Get("/api/v1/jobs", as(token));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << token << ": " << ok->body;
  }
}

TEST_F(SecurityTest, AnAdminActsForAnyUser) {
  const int64_t job = SubmitOk(alice_.get());
  v1::CancelJobResponse cr;
  Status s = bob_->CancelJob(job, &cr);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.message();
  EXPECT_EQ(Job(job).state(), v1::JOB_STATE_QUEUED);
  ASSERT_TRUE(admin_->CancelJob(job, &cr).ok());
  EXPECT_EQ(cr.state(), v1::JOB_STATE_CANCELLED);
  const v1::Job j = Job(job);
  EXPECT_EQ(j.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(j.user(), "alice");
  EXPECT_EQ(j.error(), "cancelled by root");
  // Resubmitted by the admin, the job stays alice's.
  v1::ResubmitRequest rr;
  rr.add_job_ids(job);
  v1::SubmitResponse resp;
  ASSERT_TRUE(admin_->Resubmit(rr, &resp).ok());
  ASSERT_EQ(resp.job_ids_size(), 1);
  EXPECT_EQ(Job(resp.job_ids(0)).user(), "alice");
  // An admin token serves as a worker too, and may act for another owner's group.
  v1::WorkerRef ref;
  const v1::Task t = LeaseTrain(worker_.get(), &ref);
  v1::HeartbeatRequest hb;
  *hb.mutable_worker() = ref;
  hb.add_running()->set_task_id(t.task_id());
  hb.mutable_running(0)->set_attempt(t.attempt());
  v1::HeartbeatResponse hr;
  ASSERT_TRUE(admin_->Heartbeat(hb, &hr).ok());
  EXPECT_EQ(hr.stop_size(), 0);
}

TEST(SecurityTokensTest, AnUnknownRoleStopsTheCoordinatorNamingTheLine) {
  Dir dir;
  CoordinatorConfig c;
  c.listen = "127.0.0.1:0";
  c.database = dir.File("coordinator.db");
  c.tokens_file = dir.Write("tokens.txt", std::string(kAlice) + " alice\n" + kWorker + " cluster root\n");
  auto s = CoordinatorServer::Start(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), c.tokens_file + ": line 2: role: expected user, worker or admin, found 'root'");
}

// ---- worker groups: ownership and what a group learns ----

TEST_F(SecurityTest, AnotherOwnersTokenCannotActForAGroupNorReportItsTasks) {
  const int64_t job = SubmitOk(alice_.get());
  v1::WorkerRef holder;
  const v1::Task t = LeaseTrain(worker_.get(), &holder);
  // The intruder (a worker token of another owner) names the holder's group: refused for every call.
  v1::CompleteTaskRequest forged;
  *forged.mutable_worker() = holder;
  forged.mutable_task()->set_task_id(t.task_id());
  forged.mutable_task()->set_attempt(t.attempt());
  (*forged.mutable_result()->mutable_metrics())["val_nll"] = 0.001;
  v1::CompleteTaskResponse ack;
  ExpectDenied(intruder_->CompleteTask(forged, &ack), "belongs to another user", "complete for another's group");
  v1::FailTaskRequest fail;
  *fail.mutable_worker() = holder;
  *fail.mutable_task() = forged.task();
  v1::FailTaskResponse fr;
  ExpectDenied(intruder_->FailTask(fail, &fr), "belongs to another user", "fail for another's group");
  v1::HeartbeatRequest hb;
  *hb.mutable_worker() = holder;
  v1::HeartbeatResponse hr;
  ExpectDenied(intruder_->Heartbeat(hb, &hr), "belongs to another user", "heartbeat for another's group");
  v1::RegisterWorkerGroupRequest reg;
  reg.set_group_id(holder.group_id());
  reg.mutable_group()->set_ranks(1);
  v1::RegisterWorkerGroupResponse rr;
  ExpectDenied(intruder_->RegisterWorkerGroup(reg, &rr), "belongs to another user", "taking the group over");
  // With a group of its own, it still cannot complete, fail or renew a task it does not hold.
  v1::WorkerRef mine;
  mine.set_group_id(RegisterGroup(intruder_.get(), 1));
  *forged.mutable_worker() = mine;
  ExpectDenied(intruder_->CompleteTask(forged, &ack), "is not leased to worker group", "complete of another's task");
  *fail.mutable_worker() = mine;
  ExpectDenied(intruder_->FailTask(fail, &fr), "is not leased to worker group", "fail of another's task");
  *hb.mutable_worker() = mine;
  *hb.add_running() = forged.task();
  ASSERT_TRUE(intruder_->Heartbeat(hb, &hr).ok());
  ASSERT_EQ(hr.stop_size(), 1) << "told to stop what it does not hold";
  const v1::Job j = Job(job);
  EXPECT_EQ(j.state(), v1::JOB_STATE_RUNNING);
  ASSERT_GT(j.tasks_size(), 0);
  EXPECT_EQ(j.tasks(0).attempt(), 1) << "no failure was recorded";
  EXPECT_EQ(ResultRows(job), 0);
  // The holder still completes its task.
  forged.clear_result();
  *forged.mutable_worker() = holder;
  ASSERT_TRUE(worker_->CompleteTask(forged, &ack).ok());
  EXPECT_TRUE(ack.accepted());
  EXPECT_EQ(ResultRows(job), 1);
}

TEST_F(SecurityTest, LeaseRequestsRevealNothingOfOtherGroupsTasks) {
  SubmitOk(alice_.get(), "secret-run");
  v1::WorkerRef holder;
  const v1::Task t = LeaseTrain(worker_.get(), &holder);
  ASSERT_EQ(t.output_dir(), runs_ + "/secret-run");
  // The only task is leased: another group's lease gets nothing, not even an empty task with fields.
  v1::WorkerRef other;
  other.set_group_id(RegisterGroup(intruder_.get(), 1));
  v1::LeaseTaskRequest lr;
  *lr.mutable_worker() = other;
  v1::LeaseTaskResponse resp;
  ASSERT_TRUE(intruder_->LeaseTask(lr, &resp).ok());
  EXPECT_FALSE(resp.leased());
  EXPECT_FALSE(resp.has_task());
  v1::LeaseTaskResponse expected;
  expected.set_retry_after_ms(resp.retry_after_ms());
  EXPECT_EQ(resp.SerializeAsString(), expected.SerializeAsString()) << resp.DebugString();
  // Reports about the task by a group that does not hold it: every answer is free of its spec and its attempts.
  std::vector<std::string> answers;
  for (int attempt : {0, 1, 2, 7}) {
    v1::CompleteTaskRequest c;
    *c.mutable_worker() = other;
    c.mutable_task()->set_task_id(t.task_id());
    c.mutable_task()->set_attempt(attempt);
    v1::CompleteTaskResponse ack;
    Status s = intruder_->CompleteTask(c, &ack);
    EXPECT_FALSE(s.ok()) << attempt;
    answers.push_back(s.message());
    v1::FailTaskRequest f;
    *f.mutable_worker() = other;
    *f.mutable_task() = c.task();
    f.set_checkpoint("/etc/passwd");
    v1::FailTaskResponse fr;
    s = intruder_->FailTask(f, &fr);
    EXPECT_FALSE(s.ok()) << attempt;
    answers.push_back(s.message());
    v1::ReportProgressRequest p;
    *p.mutable_worker() = other;
    *p.mutable_task() = c.task();
    (*p.mutable_metrics())["tokens_per_second"] = 1e9;
    v1::ReportProgressResponse pr;
    ASSERT_TRUE(intruder_->ReportProgress(p, &pr).ok());
    EXPECT_TRUE(pr.stop());
    EXPECT_EQ(pr.lease_expires_unix_ms(), 0) << "nothing of the holder's lease";
  }
  for (const std::string& a : answers) {
    for (const std::string& secret : {std::string("secret-run"), runs_, data_, std::string("lstm"), std::string("attempts"),
                                      std::string("now attempt")}) {
      EXPECT_EQ(a.find(secret), std::string::npos) << "'" << a << "' reveals " << secret;
    }
  }
  // The holder's lease is untouched: it completes attempt 1.
  v1::CompleteTaskRequest c;
  *c.mutable_worker() = holder;
  c.mutable_task()->set_task_id(t.task_id());
  c.mutable_task()->set_attempt(t.attempt());
  v1::CompleteTaskResponse ack;
  ASSERT_TRUE(worker_->CompleteTask(c, &ack).ok());
  EXPECT_TRUE(ack.accepted());
}

// ---- paths ----

TEST_F(SecurityTest, SpecsLeavingTheRootsAreRefusedAtSubmit) {
  fs::create_directories(dir_.File("elsewhere"));
  fs::create_directory_symlink(dir_.File("elsewhere"), runs_ + "/link");
  const std::string base = Yaml();
  const std::string out = "out: " + runs_ + "/e2e", dataset = "dataset: " + data_ + "/ds";
  const std::vector<std::pair<std::string, std::string>> attacks = {
      {out, "out: ../../.."},                    // relative: means whatever the worker's directory is
      {out, "out: /"},
      {out, "out: /tmp/x/../y"},
      {out, "out: " + runs_ + "/../../etc"},
      {out, "out: " + runs_},                    // the root itself is no run folder
      {out, "out: " + runs_ + "/link/e2e"},      // a symlink inside the root that points out of it
      {dataset, "dataset: ../../etc"},
      {dataset, "dataset: " + data_ + "/../../etc"},
      {dataset, "dataset: /etc"},
  };
  for (const auto& [from, to] : attacks) {
    std::string yaml = base;
    yaml.replace(yaml.find(from), from.size(), to);
    Status s = Submit(alice_.get(), yaml);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << to << ": " << s.message();
    EXPECT_NE(s.message().find("is outside the coordinator's"), std::string::npos) << s.message();
  }
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(alice_->ListJobs({}, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0) << "nothing stored";
  EXPECT_TRUE(fs::is_empty(dir_.File("elsewhere")));
}

// The worker's check on its own: a task whose paths leave the run folder or the roots is refused before anything
// is read or written, with a message naming the field and the path.
TEST_F(SecurityTest, TheWorkerChecksEveryPathOfATaskAgain) {
  PathPolicy roots;
  roots.data_roots = {data_};
  roots.output_root = runs_;
  v1::Task ok;
  ok.set_task_id(5);
  ok.set_job_id(2);
  ok.set_kind(v1::TASK_KIND_AGGREGATE);
  ok.set_dataset(data_ + "/ds");
  ok.set_output_dir(runs_ + "/e2e");
  ok.set_samples_dir(runs_ + "/e2e/samples/shard-000");
  ok.set_report_path(runs_ + "/e2e/result.json");
  ok.set_checkpoint(runs_ + "/e2e/checkpoints/best.pt");
  ok.add_inputs(runs_ + "/e2e/evaluation/shard-0.json");
  ok.set_experiment_yaml("score: {on: [" + data_ + "/other]}\n");
  ASSERT_TRUE(CheckTaskPaths(ok, roots).ok()) << CheckTaskPaths(ok, roots).message();
  ASSERT_TRUE(CheckTaskPaths(ok, PathPolicy{}).ok());
  struct Case {
    std::function<void(v1::Task*)> edit;
    std::string message;
  };
  fs::create_directories(dir_.File("elsewhere"));
  fs::create_directory_symlink(dir_.File("elsewhere"), runs_ + "/e2e-link");
  const std::vector<Case> cases = {
      {[&](v1::Task* t) { t->set_output_dir("../../.."); }, "task.output_dir: '../../..' is not an absolute run folder"},
      {[&](v1::Task* t) { t->set_output_dir("/"); }, "task.output_dir: / is the filesystem root"},
      {[&](v1::Task* t) { t->set_output_dir("/tmp/x/../y"); }, "task.out: /tmp/x/../y is outside the coordinator's output root"},
      {[&](v1::Task* t) { t->set_output_dir(runs_ + "/e2e-link"); }, "is outside the coordinator's output root"},
      {[&](v1::Task* t) { t->set_samples_dir(runs_ + "/other-job/samples"); },
       "task.samples_dir: " + runs_ + "/other-job/samples is outside the task's run folder " + runs_ + "/e2e"},
      {[&](v1::Task* t) { t->set_report_path(runs_ + "/e2e/../../../etc/cron.d/x"); }, "task.report_path: "},
      {[&](v1::Task* t) { t->set_checkpoint("/etc/passwd"); }, "task.checkpoint: /etc/passwd is outside the task's run folder"},
      {[&](v1::Task* t) { t->add_inputs("/etc/shadow"); }, "task.inputs[1]: /etc/shadow is outside the task's run folder"},
      {[&](v1::Task* t) { t->set_dataset("/etc"); }, "task.dataset: /etc is outside the coordinator's data roots"},
      {[&](v1::Task* t) { t->set_experiment_yaml("score: {on: [../../etc]}\n"); }, "task.score.on[0]: ../../etc is outside"},
  };
  for (const Case& c : cases) {
    v1::Task t = ok;
    c.edit(&t);
    Status s = CheckTaskPaths(t, roots);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << c.message << ": " << s.message();
    EXPECT_EQ(s.message().rfind("task 5 (job 2): ", 0), 0u) << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
  EXPECT_TRUE(fs::is_empty(dir_.File("elsewhere")));
}

// A real `cadenza-worker` (one rank, no MPI): the job's run folder was confined at submit, then became a symlink out
// of the output root. The worker refuses the training task before writing, naming the path; the job fails for good
// (no retry) and nothing is written where the link points.
TEST_F(SecurityTest, AWorkerRefusesARunFolderThatLeftTheRootAfterSubmit) {
  const int64_t job = SubmitOk(alice_.get(), "moved");
  const std::string elsewhere = dir_.File("elsewhere");
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, runs_ + "/moved");
  const std::string token = dir_.Write("worker.token", std::string(kWorker) + "\n");
  const std::string log = dir_.File("worker.log");
  const ShellRun run = Shell(std::string("OMP_NUM_THREADS=1 timeout 60 ") + CADENZA_WORKER + " --coordinator " + target_ +
                             " --token-file " + token + " --comm local --threads 1 --max-idle 1 > " + log + " 2>&1");
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  EXPECT_EQ(run.exit_code, 0) << text.str();
  const v1::Job j = Job(job);
  EXPECT_EQ(j.state(), v1::JOB_STATE_FAILED) << j.DebugString();
  const std::string refusal = "task.out: " + runs_ + "/moved is outside the coordinator's output root " + runs_ +
                              " (checked again by the worker; refused before writing)";
  EXPECT_NE(j.error().find(refusal), std::string::npos) << j.error();
  EXPECT_NE(j.error().find("after 1 attempt(s)"), std::string::npos) << "no retry: " << j.error();
  EXPECT_NE(text.str().find("tasks are checked again here: run folders inside " + runs_), std::string::npos) << text.str();
  EXPECT_NE(text.str().find(refusal), std::string::npos) << text.str();
  EXPECT_TRUE(fs::is_empty(elsewhere)) << "nothing written through the link";
  EXPECT_EQ(ResultRows(job), 0);
}

}  // namespace
}  // namespace cadenza::coord
