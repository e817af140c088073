# Packer template for `shipyard ami build --template examples/ami/web.pkr.hcl --branch main`.
# shipyard passes -var branch=<B>; the AMI must carry the `branch` and `timestamp` tags
# (`shipyard ami build` checks both, `prune` and `release` select images by `branch`).
packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "branch" {
  type = string
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_ami_owner" {
  type    = string
  default = "099720109477" # Canonical
}

locals {
  built = timestamp() # RFC 3339, UTC: shipyard accepts it as well as Unix seconds
}

source "amazon-ebs" "web" {
  region        = var.region
  instance_type = "t3.medium"
  ssh_username  = "ubuntu"
  ami_name      = "web-${var.branch}-${formatdate("YYYYMMDDhhmmss", local.built)}"
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      virtualization-type = "hvm"
    }
    owners      = [var.source_ami_owner]
    most_recent = true
  }
  tags = {
    branch    = var.branch
    timestamp = local.built
  }
  snapshot_tags = {
    branch = var.branch
  }
}

build {
  sources = ["source.amazon-ebs.web"]

  provisioner "shell" {
    inline = [
      "sudo mkdir -p /srv/web",
      "echo 'built from ${var.branch}' | sudo tee /srv/web/BUILD",
    ]
  }
}
