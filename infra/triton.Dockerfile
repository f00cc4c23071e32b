# syntax=docker/dockerfile:1
# Triton for the T4 pool: NVIDIA's release, pinned by the stack's `tritonImageTag`, plus
# onnxruntime-gpu, which the learned models import inside the Python backend (the stock image has
# the backend but not onnxruntime). The models' shared Python (triton/model_repository/
# request_handling.py, gaussian_blur.py) is not in the image: it travels with the model repository,
# linked into each model's folder, because Triton copies each model's folder from the bucket on its
# own (see request_handling.py). No build context is needed:
#   docker build --build-arg TRITON_TAG=$(pulumi config get tritonImageTag) \
#     -t <region>-docker.pkg.dev/<project>/<repo>/triton:<tag> - < infra/triton.Dockerfile
ARG TRITON_TAG
FROM nvcr.io/nvidia/tritonserver:${TRITON_TAG}-py3
# Same onnxruntime version as triton/requirements.txt (the CPU build the tests use). The [cuda,cudnn]
# extras bring the CUDA and cuDNN libraries this onnxruntime build expects, so it does not depend
# on the CUDA version inside the Triton release.
# numpy stays 1.26.4: with numpy 2.5 every response of the Python backend came back empty on the
# H200 (docs/gpu.md).
ARG ONNXRUNTIME_VERSION=1.31.1
RUN pip install --no-cache-dir "onnxruntime-gpu[cuda,cudnn]==${ONNXRUNTIME_VERSION}" "numpy==1.26.4"
