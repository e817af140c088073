"""The deployment file's `aws` block (target "aws", Fargate behind an ALB)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Expose(_Model):
    host: str = Field(..., description="Host header routed to this env, e.g. {service}-{env}.dev.example.com.")


class Scaling(_Model):
    min: int = Field(1, ge=0)
    max: int = Field(2, ge=1)
    cpu_target: float = Field(60.0, gt=0, le=100, description="Target average CPU percent.")

    @model_validator(mode="after")
    def _order(self) -> "Scaling":
        if self.min > self.max:
            raise ValueError("scaling.min is above scaling.max")
        return self


class LifecycleHook(_Model):
    """Native driver: ECS invokes this Lambda at these stages; it may pause the deployment."""

    lambda_arn: str = Field(..., pattern=r"^arn:aws[a-z-]*:lambda:")
    role_arn: str = Field(..., pattern=r"^arn:aws[a-z-]*:iam::", description="Role ECS uses to invoke the Lambda.")
    stages: list[Literal["RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
                         "POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT",
                         "POST_PRODUCTION_TRAFFIC_SHIFT"]] = Field(..., min_length=1)


class AwsBlock(_Model):
    region: str | None = None
    cluster: str = Field("photon", description="ECS cluster; created when missing.")
    subnets: list[str] = Field(..., min_length=1)
    security_groups: list[str] = Field(default_factory=list)
    listener: str = Field(..., description="ALB listener that gets the host rule: its ARN, or <load-balancer-name>:<port>.")
    vpc_id: str | None = Field(None, description="VPC of the target groups (default: the first subnet's).")
    expose: Expose
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 256
    memory: int = Field(512, ge=512, le=122880, description="MiB.")
    arch: Literal["X86_64", "ARM64"] = "X86_64"
    desired: int = Field(1, ge=0, le=100)
    scaling: Scaling | None = None
    execution_role_arn: str | None = Field(None, description="Default: photon makes a least-privilege one.")
    task_role_arn: str | None = Field(None, description="Default: photon makes an empty one.")
    assign_public_ip: bool = False
    keep_revisions: int = Field(5, ge=1, le=100, description="Task definition revisions kept per service.")
    lifecycle_hooks: list[LifecycleHook] = Field(default_factory=list, description="Native driver only.")
    adot_image: str = "public.ecr.aws/aws-observability/aws-otel-collector:latest"
