//! Named background tasks: loops that run for the node's whole life (platform refreshes, the
//! sync of node-wide settings, health probes). Each has a name and a status the node reports
//! on `/readyz`, each is told when to stop, and shutdown waits for them only until a deadline:
//! a task still running then is aborted and named in the log.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    /// It returned after being told to stop.
    Stopped,
    /// It returned on its own, or panicked: whatever it did is no longer done.
    Failed(String),
}

impl TaskStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Failed(_) => "failed",
        }
    }
}

/// A task's view of shutdown: [`Stop::stopped`] completes once the node asks it to stop.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Completes when the task should stop (at once if it already should).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which only happens when the node is gone.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

struct Task {
    name: &'static str,
    status: Arc<Mutex<TaskStatus>>,
    handle: JoinHandle<()>,
}

/// The node's named tasks. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    stop: Arc<watch::Sender<bool>>,
    tasks: Arc<Mutex<Vec<Task>>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            stop: Arc::new(watch::channel(false).0),
            tasks: Arc::default(),
        }
    }
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task(stop)` on the current tokio runtime as the task called `name`.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Stop(self.stop.subscribe());
        let asked = stop.clone();
        let status = Arc::new(Mutex::new(TaskStatus::Running));
        let body = tokio::spawn(task(stop));
        let report = status.clone();
        // The task runs on its own so a panic ends only it; this watcher records how it ended.
        let handle = tokio::spawn(async move {
            let ended = match body.await {
                Ok(()) if asked.is_stopped() => TaskStatus::Stopped,
                Ok(()) => TaskStatus::Failed("returned before the node stopped".into()),
                Err(e) if e.is_panic() => TaskStatus::Failed("panicked".into()),
                Err(_) => TaskStatus::Failed("cancelled".into()),
            };
            if let TaskStatus::Failed(why) = &ended {
                tracing::error!(task = name, why = %why, "background task ended");
            }
            *report.lock().unwrap_or_else(|p| p.into_inner()) = ended;
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Task {
                name,
                status,
                handle,
            });
    }

    /// Every task's name and status, in the order they were started.
    pub fn statuses(&self) -> Vec<(&'static str, TaskStatus)> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|t| {
                let status = t.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (t.name, status)
            })
            .collect()
    }

    /// Tells every task to stop and waits for them, at most `deadline`; tasks still running
    /// then are aborted. Answers the names of those.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<&'static str> {
        self.stop.send_replace(true);
        let tasks: Vec<Task> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let until = tokio::time::Instant::now() + deadline;
        let mut late = Vec::new();
        for mut t in tasks {
            if tokio::time::timeout_at(until, &mut t.handle).await.is_err() {
                t.handle.abort();
                tracing::warn!(
                    task = t.name,
                    "background task did not stop in time: aborted"
                );
                late.push(t.name);
            }
        }
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_report_their_status_and_stop_within_the_deadline() {
        let tasks = Tasks::new();
        tasks.spawn("polite", |mut stop| async move { stop.stopped().await });
        tasks.spawn("quitter", |_| async {});
        tasks.spawn("stubborn", |_| std::future::pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let statuses = tasks.statuses();
        assert_eq!(statuses[0], ("polite", TaskStatus::Running));
        assert_eq!(statuses[1].1.as_str(), "failed");
        assert_eq!(statuses[2], ("stubborn", TaskStatus::Running));
        let late = tasks.shutdown(Duration::from_millis(100)).await;
        assert_eq!(late, vec!["stubborn"]);
    }
}
