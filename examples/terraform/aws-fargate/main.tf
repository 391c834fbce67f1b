# A Lakestream runner on ECS Fargate capturing a PostgreSQL database (for example RDS) into an
# S3 lake. The provider creates the task definition, the service, the log group and two IAM
# roles; the task role may reach only the runner's control-store folder, the pipeline's lake
# folder and the database secret. The database password lives in Secrets Manager and is read
# by the runner itself: it never enters Terraform state.
#
#   terraform apply -var cluster=my-cluster -var 'subnets=["subnet-…"]' \
#     -var 'security_groups=["sg-…"]' -var control_store=s3://my-bucket/lakestream \
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
  description = "Name or ARN of an existing ECS cluster."
  type        = string
}

variable "subnets" {
  description = "Private subnets for the task, with a route to the database, S3 and Secrets Manager (NAT or VPC endpoints)."
  type        = list(string)
}

variable "security_groups" {
  description = "Security groups for the task; the database must accept connections from them."
  type        = list(string)
}

variable "control_store" {
  description = "Where Terraform and the runner exchange documents, as s3://<bucket>/<prefix>."
  type        = string
}

variable "database_host" {
  description = "The PostgreSQL host (wal_level = logical; on RDS, rds.logical_replication = 1)."
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
    region       = var.region
    default_tags = { owner = "data-platform" }
  }
}

resource "streaming_runner" "this" {
  name          = "orders on fargate"
  control_store = var.control_store

  fargate {
    cluster         = var.cluster
    subnets         = var.subnets
    security_groups = var.security_groups
    cpu             = 1024
    memory          = 2048
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
  description = "pending, running, stopped or unknown, with the platform's reason."
  value       = "${streaming_runner.this.status} (${streaming_runner.this.status_reason})"
}

output "log_group" {
  description = "Where the runner's logs go (CloudWatch Logs)."
  value       = streaming_runner.this.fargate.log_group
}
