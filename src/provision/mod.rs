//! Provisioning: what runs on the host. For now the cloud-init user data a create sends.

pub mod userdata;
