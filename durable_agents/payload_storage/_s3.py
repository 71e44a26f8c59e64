"""The SDK's ``S3StorageDriver`` on an aioboto3 client that opens itself on first use.

The SDK ships an aioboto3 adapter (``temporalio.contrib.aws.s3driver.aioboto3``), but it imports
``types_aiobotocore_s3`` at run time, which only the ``temporalio[aioboto3]`` extra installs;
it also wants an already-entered client, which a synchronous ``storage_from_env()`` cannot
provide. This adapter makes the same three calls (``head_object``, ``upload_fileobj``,
``get_object``) and enters the aioboto3 client lazily, on the event loop that first needs it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

# aioboto3 and botocore ship no type information; the client is typed ``Any`` below.
import aioboto3  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient


class LazyAioboto3S3Client(S3StorageDriverClient):
    """An ``S3StorageDriverClient`` that creates its aioboto3 S3 client when first used.

    Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_PROFILE``, instance roles ...). botocore's own retries stay on: a failed store fails a
    whole workflow task, so absorbing a throttled request here is cheaper than replaying it.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        key_prefix: str = "",
    ) -> None:
        """Records the settings; no connection is made until the first call.

        Args:
            endpoint_url: An S3-compatible endpoint (MinIO, moto, LocalStack); ``None`` for AWS.
            region_name: The bucket's region; ``None`` uses the AWS configuration chain.
            key_prefix: Prepended to every object key on every call, so it must be the same on
                every component that reads or writes; it is not recorded in history.
        """
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._key_prefix = key_prefix
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> Mapping[str, str]:
        """Settings worth seeing in the SDK driver's error messages."""
        info = {
            "endpoint_url": self._endpoint_url or "aws-default",
            "client_region": self._region_name or "aws-default",
        }
        if self._key_prefix:
            info["key_prefix"] = self._key_prefix
        return info

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        """Whether the object exists (``HeadObject``; needs ``s3:GetObject``, ``s3:ListBucket``)."""
        client = await self._open()
        try:
            await client.head_object(Bucket=bucket, Key=self._key_prefix + key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        return True

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        """Uploads ``data``; aioboto3 switches to multipart upload for large objects."""
        client = await self._open()
        await client.upload_fileobj(io.BytesIO(data), bucket, self._key_prefix + key)

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        """Downloads the object's bytes."""
        client = await self._open()
        response = await client.get_object(Bucket=bucket, Key=self._key_prefix + key)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def aclose(self) -> None:
        """Closes the underlying aioboto3 client, if one was opened."""
        async with self._lock:
            if self._stack is not None:
                await self._stack.aclose()
            self._stack, self._client, self._loop = None, None, None

    async def _open(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        async with self._lock:
            if self._client is None or self._loop is not loop:
                # A client is bound to the loop that opened it. One opened on a loop that has
                # since gone (a second ``asyncio.run``) cannot be closed from here; drop it.
                stack = AsyncExitStack()
                session = aioboto3.Session()
                self._client = await stack.enter_async_context(
                    session.client(
                        "s3", endpoint_url=self._endpoint_url, region_name=self._region_name
                    )
                )
                self._stack, self._loop = stack, loop
        return self._client


class ClosableS3StorageDriver(S3StorageDriver):
    """The SDK's ``S3StorageDriver`` that can also close the client it was given."""

    def __init__(self, client: LazyAioboto3S3Client, bucket: str) -> None:
        """Wraps ``client`` for ``bucket`` with the SDK's defaults (name ``aws.s3driver``)."""
        super().__init__(client=client, bucket=bucket)
        self._closable_client = client

    async def aclose(self) -> None:
        """Closes the S3 client; the driver opens a new one if used again."""
        await self._closable_client.aclose()
