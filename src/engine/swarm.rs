//! Docker Swarm mode over the engine API (bollard): what a member of a cluster needs from its
//! daemon — its state, init, join tokens, join, leave, and on a manager the nodes, demotion
//! and removal. The join tokens pass through memory only.

use std::{collections::HashMap, path::Path, time::Duration};

use bollard::{
    Docker,
    models::{
        LocalNodeState, NodeSpecRoleEnum, NodeState, Reachability, SwarmInitRequest,
        SwarmJoinRequest,
    },
    query_parameters::{
        DeleteNodeOptionsBuilder, LeaveSwarmOptionsBuilder, UpdateNodeOptionsBuilder,
    },
};

use super::{EngineError, client};
use crate::secret::Secret;

/// The port managers listen on for the cluster.
pub const SWARM_PORT: u16 = 2377;

/// One member's daemon.
pub struct Member {
    docker: Docker,
    url: String,
}

/// What a daemon says about its own part in a swarm (`/info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalState {
    /// `inactive`, `pending`, `active`, `error`, `locked`.
    pub state: String,
    pub node_id: Option<String>,
    /// A manager that can take cluster calls.
    pub manager: bool,
    pub cluster_id: Option<String>,
}

impl LocalState {
    pub fn active(&self) -> bool {
        self.state == LocalNodeState::ACTIVE.to_string()
    }
}

/// A node as a manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    pub ready: bool,
    pub leader: bool,
    /// A manager that the raft can reach.
    pub reachable: bool,
    /// Where its daemon says it is (the advertised address).
    pub addr: Option<String>,
}

/// The two join tokens (secrets: never written anywhere).
pub struct JoinTokens {
    pub worker: Secret<String>,
    pub manager: Secret<String>,
}

impl Member {
    /// Connects to the daemon at `url` with a context's TLS files.
    pub async fn connect(
        url: &str,
        tls_dir: &Path,
        timeout: Duration,
    ) -> Result<Member, EngineError> {
        let docker = client(url, tls_dir, timeout)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| swarm_error(url, "version negotiation", e))?;
        Ok(Member {
            docker,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn local_state(&self) -> Result<LocalState, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| swarm_error(&self.url, "info", e))?;
        let swarm = info.swarm.unwrap_or_default();
        Ok(LocalState {
            state: swarm
                .local_node_state
                .unwrap_or(LocalNodeState::INACTIVE)
                .to_string(),
            node_id: swarm.node_id.filter(|id| !id.is_empty()),
            manager: swarm.control_available.unwrap_or(false),
            cluster_id: swarm.cluster.and_then(|c| c.id),
        })
    }

    /// Makes this daemon the first manager of a new cluster, listening on every address and
    /// advertising `advertise` (its private address); returns its node id.
    pub async fn init(&self, advertise: &str) -> Result<String, EngineError> {
        self.docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                advertise_addr: Some(format!("{advertise}:{SWARM_PORT}")),
                data_path_addr: Some(advertise.to_string()),
                ..Default::default()
            })
            .await
            .map_err(|e| swarm_error(&self.url, "swarm init", e))
    }

    /// The join tokens (a manager only).
    pub async fn join_tokens(&self) -> Result<JoinTokens, EngineError> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(|e| swarm_error(&self.url, "swarm inspect", e))?;
        let tokens = swarm.join_tokens.unwrap_or_default();
        Ok(JoinTokens {
            worker: Secret::new(tokens.worker.unwrap_or_default()),
            manager: Secret::new(tokens.manager.unwrap_or_default()),
        })
    }

    /// Joins the cluster of `managers` (private addresses) with `token`.
    pub async fn join(
        &self,
        advertise: &str,
        managers: &[String],
        token: &Secret<String>,
    ) -> Result<(), EngineError> {
        self.docker
            .join_swarm(SwarmJoinRequest {
                listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                advertise_addr: Some(format!("{advertise}:{SWARM_PORT}")),
                data_path_addr: Some(advertise.to_string()),
                remote_addrs: Some(
                    managers
                        .iter()
                        .map(|m| format!("{m}:{SWARM_PORT}"))
                        .collect(),
                ),
                join_token: Some(token.expose().clone()),
            })
            .await
            .map_err(|e| swarm_error(&self.url, "swarm join", e))
    }

    /// Leaves the cluster (`force`: even as a manager, or the last one).
    pub async fn leave(&self, force: bool) -> Result<(), EngineError> {
        let options = LeaveSwarmOptionsBuilder::default().force(force).build();
        match self.docker.leave_swarm(Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("not part of a swarm") => Ok(()),
            Err(e) => Err(swarm_error(&self.url, "swarm leave", e)),
        }
    }

    /// The cluster's nodes (a manager only).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let nodes = self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| swarm_error(&self.url, "node ls", e))?;
        Ok(nodes
            .into_iter()
            .map(|n| {
                let spec = n.spec.unwrap_or_default();
                let manager = n.manager_status.unwrap_or_default();
                NodeInfo {
                    id: n.id.unwrap_or_default(),
                    hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                    role: spec
                        .role
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "worker".into()),
                    ready: n.status.and_then(|s| s.state) == Some(NodeState::READY),
                    leader: manager.leader.unwrap_or(false),
                    reachable: manager.reachability == Some(Reachability::REACHABLE),
                    addr: manager.addr,
                }
            })
            .collect())
    }

    /// Demotes a manager to a worker, as `docker node demote` does: the node's whole spec
    /// with the new role, at its current version. False: it was a worker already.
    pub async fn demote(&self, node_id: &str) -> Result<bool, EngineError> {
        let node = self
            .docker
            .inspect_node(node_id)
            .await
            .map_err(|e| swarm_error(&self.url, "node inspect", e))?;
        let mut spec = node.spec.unwrap_or_default();
        if spec.role == Some(NodeSpecRoleEnum::WORKER) {
            return Ok(false);
        }
        spec.role = Some(NodeSpecRoleEnum::WORKER);
        let version = node.version.and_then(|v| v.index).unwrap_or(0) as i64;
        self.docker
            .update_node(
                node_id,
                spec,
                UpdateNodeOptionsBuilder::default().version(version).build(),
            )
            .await
            .map_err(|e| swarm_error(&self.url, "node demote", e))?;
        Ok(true)
    }

    /// Removes a node that left (or is gone) from the cluster's list.
    pub async fn remove_node(&self, node_id: &str) -> Result<(), EngineError> {
        let options = DeleteNodeOptionsBuilder::default().force(true).build();
        match self.docker.delete_node(node_id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(swarm_error(&self.url, "node rm", e)),
        }
    }

    /// Waits until every node of `ids` is Ready (polled on this manager).
    pub async fn wait_ready(&self, ids: &[String], timeout: Duration) -> Result<(), EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let nodes = self.nodes().await?;
            let ready: HashMap<&str, bool> =
                nodes.iter().map(|n| (n.id.as_str(), n.ready)).collect();
            if ids.iter().all(|id| ready.get(id.as_str()) == Some(&true)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::Timeout {
                    url: self.url.clone(),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn swarm_error(url: &str, call: &'static str, e: bollard::errors::Error) -> EngineError {
    let message = match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        e => e.to_string(),
    };
    EngineError::Swarm {
        url: url.to_string(),
        call,
        message: message.trim().to_string(),
    }
}
