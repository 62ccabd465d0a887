//! Calls that make something (a launch, a group, a key pair, tags) run to their end on the
//! runtime even when the caller stops waiting for them. A Ctrl-C drops a create in the middle of
//! such a call; the request may be on its way already, and if the rollback looked before it
//! landed, what it made would outlive the rollback. So the rollback first waits for
//! [`InFlight::settled`]: every call sent has then been answered, or has given up.

use std::future::Future;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tokio_util::task::TaskTracker;

use super::{CloudError, error::from_sdk};

/// The making calls of one client (and its clones) still on their way.
#[derive(Debug, Clone, Default)]
pub(super) struct InFlight(TaskTracker);

impl InFlight {
    /// Sends `call` (the SDK's `send()`) as a task of its own, and waits for its answer.
    pub(super) async fn send<T, E>(
        &self,
        action: &'static str,
        endpoint: &str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
    ) -> Result<T, CloudError>
    where
        T: Send + 'static,
        E: ProvideErrorMetadata + std::error::Error + Send + 'static,
    {
        match self.0.spawn(call).await {
            Ok(answer) => answer.map_err(|e| from_sdk(action, endpoint, e)),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(CloudError::Api {
                action,
                code: None,
                message: "the call was abandoned as the program ended".into(),
            }),
        }
    }

    /// Waits until every call sent so far has ended (the SDK's operation timeout bounds it).
    pub(super) async fn settled(&self) {
        if self.0.is_empty() {
            return;
        }
        tracing::debug!("waiting for {} EC2 calls on their way", self.0.len());
        self.0.close();
        self.0.wait().await;
        self.0.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    type Answer = Result<
        (),
        SdkError<aws_sdk_ec2::operation::run_instances::RunInstancesError, HttpResponse>,
    >;

    #[tokio::test]
    async fn a_call_whose_caller_stopped_waiting_still_ends_before_settled_returns() {
        let calls = InFlight::default();
        let landed = Arc::new(AtomicBool::new(false));
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
        let call = {
            let landed = landed.clone();
            async move {
                let _ = sent_tx.send(());
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                landed.store(true, Ordering::SeqCst);
                Answer::Ok(())
            }
        };
        let caller = calls.send("RunInstances", "https://ec2.test", call);
        // The caller is dropped once the call is on its way, as a Ctrl-C drops a create.
        tokio::select! {
            _ = caller => panic!("the call answered before it was abandoned"),
            _ = sent_rx => {}
        }
        assert!(!landed.load(Ordering::SeqCst));
        calls.settled().await;
        assert!(
            landed.load(Ordering::SeqCst),
            "settled returned before the call ended"
        );
        // Reopened: the client goes on making calls.
        let again = calls.send("RunInstances", "https://ec2.test", async { Answer::Ok(()) });
        assert!(again.await.is_ok());
    }
}
