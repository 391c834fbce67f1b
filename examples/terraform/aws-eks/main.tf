# A Lakestream runner in an existing EKS cluster capturing a PostgreSQL database (for example
# RDS) into an S3 lake. The provider creates, in the namespace, a ServiceAccount and a
# StatefulSet with one replica (at most one runner pod, ever); it finds the cluster's endpoint
# and CA with DescribeCluster and authenticates with an EKS token made from its own AWS
# credentials, which need an access entry in the cluster (or an aws-auth mapping) that may
# manage ServiceAccounts and StatefulSets in that namespace.
#
# The runner reaches S3 and Secrets Manager with the IAM role of its ServiceAccount (IRSA). The
# ServiceAccount is named after the runner's id, so the role's trust policy allows the pattern:
#
#   "Condition": { "StringLike": {
#     "oidc.eks.<region>.amazonaws.com/id/<id>:sub": "system:serviceaccount:<namespace>:lakestream-*" } }
#
# and its permissions allow the control-store prefix, the lake prefix and the database secret.
# The database password stays in Secrets Manager, read by the runner itself: it never enters
# Terraform state.
#
#   terraform apply -var cluster=my-cluster -var runner_role_arn=arn:aws:iam::123456789012:role/lakestream \
#     -var control_store=s3://my-bucket/lakestream \
#     -var database_host=mydb.abc123.eu-west-1.rds.amazonaws.com -var lake=s3://my-lake/cdc

terraform {
  required_providers {
    streaming = {
      source = "lakestream/streaming"
    }
  }
}

variable "region" {
  description = "AWS region of the cluster, the buckets and the secret."
  type        = string
  default     = "eu-west-1"
}

variable "cluster" {
  description = "Name of an existing EKS cluster."
  type        = string
}

variable "namespace" {
  description = "An existing namespace for the runner (the provider neither creates nor deletes namespaces)."
  type        = string
  default     = "default"
}

variable "runner_role_arn" {
  description = "IAM role for the runner's ServiceAccount (IRSA), trusted by the cluster's OIDC provider; see the comment at the top."
  type        = string
}

variable "control_store" {
  description = "Where Terraform and the runner exchange documents, as s3://<bucket>/<prefix>."
  type        = string
}

variable "database_host" {
  description = "The PostgreSQL host (wal_level = logical; on RDS, rds.logical_replication = 1), reachable from the cluster's pods."
  type        = string
  default     = "orders-db.internal"
}

variable "database_secret" {
  description = "Secrets Manager secret holding the database credentials as JSON (RDS's format: {\"username\": …, \"password\": …})."
  type        = string
  default     = "lakestream/orders-db"
}

variable "lake" {
  description = "The lake folder, as s3://<bucket>/<prefix>."
  type        = string
  default     = "s3://example-lake/cdc"
}

provider "streaming" {
  aws {
    region = var.region
  }
}

resource "streaming_runner" "this" {
  name          = "orders on eks"
  control_store = var.control_store

  eks {
    cluster_name             = var.cluster
    namespace                = var.namespace
    service_account_role_arn = var.runner_role_arn
    cpu                      = "500m"
    memory                   = "1Gi"
  }
}

resource "streaming_pipeline" "orders" {
  name      = "orders"
  runner_id = streaming_runner.this.id

  source {
    postgres {
      host     = var.database_host
      database = "orders"
      user     = "lakestream"
      password {
        type = "aws_secrets_manager"
        name = var.database_secret
        key  = "password"
      }
      tables = ["public.orders", "public.customers"]
    }
  }

  target {
    uri    = var.lake
    format = "parquet"
  }
}

output "runner_status" {
  description = "pending, running, stopped or unknown, with the platform's reason (the pod's, when it is not ready)."
  value       = "${streaming_runner.this.status} (${streaming_runner.this.status_reason})"
}

output "stateful_set" {
  description = "The runner's StatefulSet: kubectl -n <namespace> logs statefulset/<name> shows its log."
  value       = "${streaming_runner.this.eks.namespace}/${streaming_runner.this.eks.stateful_set}"
}

output "service_account" {
  description = "The runner's ServiceAccount, for the role's trust policy or an EKS Pod Identity association."
  value       = streaming_runner.this.eks.service_account
}
