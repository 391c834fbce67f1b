# A CDC pipeline on your machine: a runner process started by Terraform, streaming changes of a
# PostgreSQL database into a local lake folder. `scripts/demo` applies this with a throwaway
# PostgreSQL; point the variables at your own database to try it on real data.

terraform {
  required_providers {
    streaming = {
      source = "lakestream/streaming"
    }
  }
}

variable "database_url" {
  description = "The database to capture, as postgresql://user@host:port/database (no password here; see password_env). The role needs the REPLICATION attribute; wal_level must be logical."
  type        = string
}

variable "password_env" {
  description = "Environment variable that holds the database password. The runner reads it from the environment of `terraform apply`; the value never enters state."
  type        = string
  default     = "LAKESTREAM_DEMO_PGPASSWORD"
}

variable "tables" {
  description = "Tables to capture."
  type        = list(string)
  default     = ["public.customers", "public.orders"]
}

variable "lake_folder" {
  description = "Absolute path of the lake folder: one sub-folder of change files per table."
  type        = string
}

variable "control_folder" {
  description = "Absolute path of the control store folder, where Terraform and the runner exchange state."
  type        = string
}

variable "format" {
  description = "Change-file format: parquet, jsonl or avro."
  type        = string
  default     = "parquet"
}

resource "streaming_runner" "local" {
  name               = "local demo"
  description        = "Runs on this machine; started and stopped by Terraform."
  control_store      = "file://${var.control_folder}"
  heartbeat_interval = "2s"

  local {}
}

resource "streaming_pipeline" "demo" {
  name      = "demo"
  runner_id = streaming_runner.local.id

  source {
    postgres {
      url = var.database_url
      password {
        type = "env"
        name = var.password_env
      }
      tables = var.tables
    }
  }

  target {
    uri            = "file://${var.lake_folder}"
    format         = var.format
    flush_interval = "1s"
  }
}

data "streaming_pipeline_status" "demo" {
  id = streaming_pipeline.demo.id
}

output "runner_id" {
  description = "The runner's id (for `terraform import` and the streaming_runner data source)."
  value       = streaming_runner.local.id
}

output "runner_status" {
  description = "pending, running, stopped or unknown."
  value       = "${streaming_runner.local.status} (${streaming_runner.local.status_reason})"
}

output "runner_log" {
  description = "The runner process's log file."
  value       = streaming_runner.local.local.log_file
}

output "pipeline_id" {
  value = streaming_pipeline.demo.id
}

output "pipeline_phase" {
  description = "What the pipeline does, as of the last refresh."
  value       = data.streaming_pipeline_status.demo.phase
}

output "rows_delivered" {
  value = data.streaming_pipeline_status.demo.rows_delivered
}

output "lake" {
  value = var.lake_folder
}
