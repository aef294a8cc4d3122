#!/usr/bin/env python3
"""peer_bench.py: dblocks against PyTorch on the same machine, in one run.

Run by hand, never by `make test` or `make demo`. It times the same training
and sampling work twice: `dblocks train` / `dblocks sample` / `dblocks bench
train` as subprocesses, and a PyTorch implementation of exactly dblocks' model
and step (below), then prints the ratio table (dblocks time / PyTorch time).
The two halves run interleaved, item by item, so that both see similar load
from whatever else shares the machine.

Configurations:
  demo   width 64, 4 heads, patch 4 (49 tokens), L = 6, batch 64, lr 3e-3,
         Fashion-MNIST: train B = 3 (3 blocks of 2 layers, one after another)
         and B = 1 (one block of 6 layers), STEPS per block each; then sample
         SAMPLES images (50 Euler steps, guidance 2) from each trained run.
  big    one block of 4 layers at width 384, 6 heads, patch 2 (196 tokens),
         batch 32 on a CPU (256 with --gpu): ms per training step after a
         warm-up. dblocks' side is `dblocks bench train --layers 4 --blocks 1`
         (the very step `dblocks train` runs, timed by device events; it
         prints two rows for the same 4-layer block and we keep the second),
         and its peak device memory; PyTorch's side runs in a child process
         so that its peak resident memory is its own.

PyTorch is not a dependency of dblocks. Install it into a virtualenv:
  python3 -m venv build/peer-venv
  build/peer-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
  (plain `build/peer-venv/bin/pip install torch` also works; it is larger)
then:
  build/peer-venv/bin/python tools/peer_bench.py --quick           # smoke run, a few minutes
  build/peer-venv/bin/python tools/peer_bench.py --json peer.json  # the issue's configuration

The PyTorch model does the same work as dblocks (same shapes, same FLOPs,
fp32) but is not meant to match it bit for bit: initial values, data order and
noise come from torch's generator. Both losses are printed so that one can see
they start and fall alike. Attention uses torch's scaled_dot_product_attention,
what a PyTorch user would write.

On a machine shared with other work, PyTorch's OpenMP threads spin-wait for
each other and lose far more than dblocks does (compare the CPU seconds);
OMP_WAIT_POLICY=PASSIVE in the environment makes them sleep instead, and the
table's header says which policy ran. On a quiet machine PASSIVE slows PyTorch
down (1.7x measured on 2 cores): the fair figure is the default policy on a
quiet machine.
"""
import argparse
import gzip
import json
import math
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from statistics import NormalDist

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(
        "peer_bench.py needs PyTorch, which dblocks itself does not use. Install it into a virtualenv:\n"
        "  python3 -m venv build/peer-venv\n"
        "  build/peer-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
        "and run: build/peer-venv/bin/python tools/peer_bench.py --quick")

# ------------------------------------------------------------------ EDM (models/edm.c)
P_MEAN, P_STD, SIGMA_MIN, SIGMA_MAX, SIGMA_DATA = -1.2, 1.2, 0.002, 80.0, 0.5
N_CLASSES, FREQ_DIM, GAMMA, LABEL_DROPOUT = 10, 256, 0.1, 0.1
ND = NormalDist()


def partition(B):
    """Equiprobable bounds, ascending: B+1 noise levels (edm_partition)."""
    q0 = ND.cdf((math.log(SIGMA_MIN) - P_MEAN) / P_STD)
    q1 = ND.cdf((math.log(SIGMA_MAX) - P_MEAN) / P_STD)
    b = [math.exp(P_MEAN + P_STD * ND.inv_cdf(q0 + (q1 - q0) * k / B)) for k in range(1, B)]
    return [SIGMA_MIN] + b + [SIGMA_MAX]


def block_train_range(bounds, B, block):
    """Block 0 owns the highest noise; ranges widened by gamma (edm_block_train_range)."""
    lo, hi = bounds[B - 1 - block], bounds[B - block]
    alpha = (hi / lo) ** GAMMA
    return max(lo / alpha, SIGMA_MIN), min(hi * alpha, SIGMA_MAX)


def block_of_sigma(bounds, B, s):
    if s >= bounds[B]:
        return 0
    if s < bounds[0]:
        return B - 1
    k = 0
    while k + 1 < B and bounds[k + 1] <= s:
        k += 1
    return B - 1 - k


def sample_sigmas(n, lo, hi, gen):
    """ln σ ~ N(P_mean, P_std²) truncated to [lo, hi], by the inverse CDF."""
    a = torch.tensor((math.log(lo) - P_MEAN) / P_STD, dtype=torch.float64)
    b = torch.tensor((math.log(hi) - P_MEAN) / P_STD, dtype=torch.float64)
    pa, pb = torch.special.ndtr(a), torch.special.ndtr(b)
    u = pa + torch.rand(n, dtype=torch.float64, generator=gen) * (pb - pa)
    s = torch.exp(P_MEAN + P_STD * torch.special.ndtri(u))
    return s.clamp(lo, hi).float()


def precond(sigma):
    """c_in, c_noise, c_skip, c_out and the loss weight (edm_preconditioning, edm_loss_weight)."""
    s2 = sigma * sigma + SIGMA_DATA ** 2
    return (1 / s2.sqrt(), 0.25 * sigma.log(), SIGMA_DATA ** 2 / s2, sigma * SIGMA_DATA / s2.sqrt(),
            s2 / (sigma * SIGMA_DATA) ** 2)


def sigma_schedule(N, rho=7.0):
    a, b = SIGMA_MAX ** (1 / rho), SIGMA_MIN ** (1 / rho)
    s = [(a + j / (N - 1) * (b - a)) ** rho for j in range(N)]
    s[0], s[N - 1] = SIGMA_MAX, SIGMA_MIN
    return s + [0.0]


# ------------------------------------------------------------------ DiT (models/dit.c, dit_layer.c)
def sincos_2d(gh, gw, C):
    q = C // 4
    w = torch.tensor([10000.0 ** (-k / q) for k in range(q)], dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij")
    i, j = i.reshape(-1, 1) * w, j.reshape(-1, 1) * w
    return torch.cat([j.sin(), j.cos(), i.sin(), i.cos()], dim=1).float()


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Layer(nn.Module):
    """AdaLN-Zero DiT layer: attention and tanh-GELU MLP, each LN + modulate + gated residual."""

    def __init__(self, C, NH):
        super().__init__()
        self.C, self.NH = C, NH
        self.ada = nn.Linear(C, 6 * C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.fc1 = nn.Linear(C, 4 * C)
        self.fc2 = nn.Linear(4 * C, C)

    def forward(self, x, c):
        B, T, C = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c)).chunk(6, dim=1)
        h = modulate(F.layer_norm(x, (C,), eps=1e-6), sh1, sc1)
        q, k, v = self.qkv(h).reshape(B, T, 3, self.NH, C // self.NH).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + g1[:, None, :] * self.proj(a)
        h = modulate(F.layer_norm(x, (C,), eps=1e-6), sh2, sc2)
        return x + g2[:, None, :] * self.fc2(F.gelu(self.fc1(h), approximate="tanh"))


class Block(nn.Module):
    """One DiffusionBlocks block: patch embedding + positions, noise MLP + class table, layers, final AdaLN."""

    def __init__(self, width, heads, depth, patch, img=28, ch=1):
        super().__init__()
        C, self.p, self.img, self.ch = width, patch, img, ch
        self.g = img // patch
        P = patch * patch * ch
        self.x_emb = nn.Linear(P, C)
        self.t1, self.t2 = nn.Linear(FREQ_DIM, C), nn.Linear(C, C)
        self.y_emb = nn.Embedding(N_CLASSES + 1, C)
        self.layers = nn.ModuleList([Layer(C, heads) for _ in range(depth)])
        self.f_ada, self.f_lin = nn.Linear(C, 2 * C), nn.Linear(C, P)
        self.register_buffer("pos", sincos_2d(self.g, self.g, C))
        half = FREQ_DIM // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))
        for m in self.modules():  # docs/method.md §4, as dit_block_init
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for w in (self.t1.weight, self.t2.weight, self.y_emb.weight):
            nn.init.normal_(w, 0.0, 0.02)
        for l in self.layers:
            nn.init.zeros_(l.ada.weight)
        nn.init.zeros_(self.f_ada.weight)
        nn.init.zeros_(self.f_lin.weight)

    def forward(self, z, c_in, c_noise, c_skip, c_out, labels):
        B, p, g, ch = z.shape[0], self.p, self.g, self.ch
        x = (c_in[:, None, None, None] * z).reshape(B, ch, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, -1)
        x = self.x_emb(x) + self.pos
        a = c_noise[:, None] * self.freqs
        c = self.t2(F.silu(self.t1(torch.cat([a.cos(), a.sin()], dim=1)))) + self.y_emb(labels)
        for l in self.layers:
            x = l(x, c)
        sh, sc = self.f_ada(F.silu(c)).chunk(2, dim=1)
        f = self.f_lin(modulate(F.layer_norm(x, (x.shape[2],), eps=1e-6), sh, sc))
        f = f.reshape(B, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(z.shape)
        return c_skip[:, None, None, None] * z + c_out[:, None, None, None] * f


# ------------------------------------------------------------------ training and sampling (image_task.c, sampler.c)
def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_step(net, opt, data, labels, idx, lo, hi, gen, dev):
    """z = y + σε, D = the block's denoiser, loss = mean_b w(σ)‖D - y‖²/dim, AdamW with clip 1."""
    y = data[idx]
    lab = labels[idx].clone()
    lab[torch.rand(idx.shape[0], generator=gen) < LABEL_DROPOUT] = N_CLASSES
    sigma = sample_sigmas(idx.shape[0], lo, hi, gen)
    c_in, c_noise, c_skip, c_out, w = (t.to(dev) for t in precond(sigma))
    z = y + sigma.to(dev)[:, None, None, None] * torch.randn(y.shape, generator=gen).to(dev)
    D = net(z, c_in, c_noise, c_skip, c_out, lab.to(dev))
    loss = (w * (D - y).square().mean(dim=(1, 2, 3))).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return loss.detach()


def torch_train(cfg, B, steps, data, labels, dev, seed=0):
    """B blocks of L/B layers, trained one after another (block 0 = highest noise).
    Returns (seconds, blocks, losses per block every 10 steps)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    bounds = partition(B)
    nets, curves = [], []
    N, bs = data.shape[0], cfg["batch"]
    sync(dev)
    t0 = time.perf_counter()
    for block in range(B):
        net = Block(cfg["width"], cfg["heads"], cfg["layers"] // B, cfg["patch"]).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        lo, hi = block_train_range(bounds, B, block)
        perm, pos, curve = torch.randperm(N, generator=gen), 0, []
        for step in range(steps):
            if pos + bs > N:
                perm, pos = torch.randperm(N, generator=gen), 0
            idx = perm[pos:pos + bs]
            pos += bs
            loss = train_step(net, opt, data, labels, idx, lo, hi, gen, dev)
            if (step + 1) % 10 == 0:
                curve.append(float(loss))
        nets.append(net)
        curves.append(curve)
    sync(dev)
    return time.perf_counter() - t0, nets, curves


@torch.inference_mode()
def torch_sample(nets, n, dev, steps=50, guidance=2.0, chunk=256, seed=0):
    """Euler on the EDM ρ = 7 schedule; each step's D by the block that owns σ, with
    classifier-free guidance as one batch of [conditional | unconditional] copies."""
    B = len(nets)
    bounds, sig = partition(B), sigma_schedule(steps)
    gen = torch.Generator().manual_seed(seed)
    per_class = max(n // N_CLASSES, 1)
    labels = torch.tensor([i // per_class for i in range(n)], dtype=torch.long)
    sync(dev)
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        lab = torch.cat([labels[start:start + m], torch.full((m,), N_CLASSES, dtype=torch.long)]).to(dev)
        z = (torch.randn((m, 1, 28, 28), generator=gen) * sig[0]).to(dev)
        for j in range(steps):
            s0, s1 = sig[j], sig[j + 1]
            c_in, c_noise, c_skip, c_out, _ = (t.to(dev) for t in precond(torch.full((2 * m,), s0)))
            D2 = nets[block_of_sigma(bounds, B, s0)](torch.cat([z, z]), c_in, c_noise, c_skip, c_out, lab)
            D = D2[m:] + guidance * (D2[:m] - D2[m:])
            z = z + (s1 - s0) * (z - D) / s0
    sync(dev)
    return time.perf_counter() - t0


def load_idx(data_dir):
    """Fashion-MNIST train images as (N, 1, 28, 28) in [-1, 1] (x/127.5 - 1, as data/idx.c) and labels."""
    def read(name):
        for cand in (name, name + ".gz"):
            path = os.path.join(data_dir, cand)
            if os.path.exists(path):
                with (gzip.open if cand.endswith(".gz") else open)(path, "rb") as f:
                    return f.read()
        sys.exit(f"peer_bench: {data_dir}/{name}[.gz] not found (--data)")
    im, lb = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    n, rows, cols = struct.unpack(">III", im[4:16])
    x = torch.frombuffer(bytearray(im[16:16 + n * rows * cols]), dtype=torch.uint8).float()
    y = torch.frombuffer(bytearray(lb[8:8 + n]), dtype=torch.uint8).long()
    return x.reshape(n, 1, rows, cols) / 127.5 - 1.0, y


# ------------------------------------------------------------------ the big configuration, in a child process
def big_child(a):
    """ms/step of one 4-layer block at width 384 on synthetic data; JSON on stdout."""
    torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if a.gpu else "cpu")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gen = torch.Generator().manual_seed(7)
    data = (torch.rand((1024, 1, 28, 28), generator=gen) * 2 - 1).to(dev)
    labels = torch.arange(1024) % N_CLASSES
    net = Block(384, 6, 4, 2).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    lo, hi = block_train_range(partition(3), 3, 0)
    if a.gpu:
        torch.cuda.reset_peak_memory_stats()
    step = lambda i: train_step(net, opt, data, labels, torch.arange(i * a.batch, (i + 1) * a.batch) % 1024, lo, hi,
                                gen, dev)
    for i in range(a.warmup):
        step(i)
    sync(dev)
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(i)
    sync(dev)
    ms = (time.perf_counter() - t0) / a.steps * 1e3
    out = {"ms_per_step": ms, "steps": a.steps, "warmup": a.warmup, "batch": a.batch,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024.0}
    if a.gpu:
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 1048576.0
    print("PEER_BIG " + json.dumps(out))


# ------------------------------------------------------------------ dblocks as subprocesses
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Dblocks:
    def __init__(self, binary, work, data, gpu):
        self.bin, self.work, self.data, self.gpu = binary, work, data, gpu
        self.env = dict(os.environ)
        build = os.path.dirname(os.path.abspath(binary))
        # warm kernel caches next to the binary, as `make test` keeps them
        self.env.setdefault("DBLOCKS_CACHE_DIR", os.path.join(build, "kernel-cache"))
        self.env.setdefault("POCL_CACHE_DIR", os.path.join(build, "pocl-cache"))

    def run(self, args):
        t0, c0 = time.perf_counter(), children_cpu()
        p = subprocess.run([self.bin] + args, env=self.env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        self.cpu = children_cpu() - c0  # the whole process: start-up and dataset load included
        if p.returncode:
            sys.exit(f"peer_bench: {self.bin} {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p.stdout, wall

    def train(self, name, cfg, B, steps):
        out = os.path.join(self.work, name)
        shutil.rmtree(out, ignore_errors=True)
        args = ["train", "--out", out, "--width", str(cfg["width"]), "--heads", str(cfg["heads"]), "--patch",
                str(cfg["patch"]), "--layers", str(cfg["layers"]), "--blocks", str(B), "--batch", str(cfg["batch"]),
                "--lr", str(cfg["lr"]), "--steps", str(steps), "--quiet", "--ckpt-every", "0", "--log-every", "10"]
        if self.data:
            args += ["--data", self.data]
        text, wall = self.run(args)
        m = re.search(r"done: (\d+) steps in ([\d.]+) s, loss ([\d.naif-]+) -> ([\d.naif-]+)", text)
        if not m:
            sys.exit(f"peer_bench: cannot read `dblocks train` output:\n{text}")
        curves = [[] for _ in range(B)]
        with open(os.path.join(out, "log.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if "loss" in e and "block" in e:
                    curves[e["block"]].append(e["loss"])
        return {"seconds": float(m.group(2)), "wall": wall, "cpu": self.cpu, "curves": curves, "run": out}

    def sample(self, run, n):
        stem = os.path.join(self.work, os.path.basename(run) + "-samples")
        text, wall = self.run(["sample", "--run", run, "--per-class", str(max(n // N_CLASSES, 1)), "--steps", "50",
                               "--guidance", "2", "--png", stem + ".png", "--npy", stem + ".npy"])
        m = re.search(r"sampled (\d+) images .* in ([\d.]+) s", text)
        if not m:
            sys.exit(f"peer_bench: cannot read `dblocks sample` output:\n{text}")
        return {"seconds": float(m.group(2)), "wall": wall, "cpu": self.cpu, "images": int(m.group(1))}

    def bench_big(self, batch):
        text, wall = self.run(["bench", "train", "--layers", "4", "--blocks", "1", "--width", "384", "--heads", "6",
                               "--patch", "2", "--batch", str(batch)])
        rows = re.findall(r"^(?:end to end|one block).*?\s([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", text, re.M)
        if len(rows) != 2:
            sys.exit(f"peer_bench: cannot read `dblocks bench train` output:\n{text}")
        dev = re.search(r"bench train on (.*)", text)
        return {"ms_per_step": float(rows[1][0]), "ms_rows": [float(r[0]) for r in rows],
                "peak_mib": float(rows[1][2]), "wall": wall, "device": dev.group(1).split(" (")[0] if dev else "?"}


# ------------------------------------------------------------------ report
def loss_summary(curves):
    """Per block: mean of the first three and of the last three logged losses (every 10 steps)."""
    out = []
    for c in curves:
        if c:
            k = min(3, len(c))
            out.append((sum(c[:k]) / k, sum(c[-k:]) / k))
    return out


def fmt_losses(s):
    return "  ".join(f"{a:.3f}->{b:.3f}" for a, b in s)


def report(res):
    """The ratio table, from the figures main() gathered (or --report FILE read back)."""
    steps, n_samples, rows = res["steps_per_block"], res["samples"], res["rows"]
    print(f"\nresults ({res['date']}, {res['cpu']}; dblocks on {res.get('big_device') or 'its default device'}; "
          f"PyTorch {res['torch']} on {res['device']}, {res['threads']} threads, "
          f"OMP_WAIT_POLICY {res.get('omp_wait_policy', 'default')})")
    print(f"demo config: width 64, 4 heads, patch 4 (49 tokens), L = 6, batch 64, lr 3e-3, {steps} steps per block")
    print(f"{'work':<58} {'PyTorch':>10} {'dblocks':>10} {'ratio':>7}")
    for name, t, d, _ in rows:
        print(f"{name:<58} {t:>9.1f}s {d:>9.1f}s {d / t:>6.2f}x")
    if steps != 400 or n_samples != 1000:
        print("EXTRAPOLATED, not measured: the rows above scaled linearly to the issue's 400 steps per block and 1000 "
              "images")
        for name, t, d, k in rows:
            label = re.sub(r"^(train B = \d).*", r"\1 (400 steps per block)", name)
            label = label.replace(f"sample {n_samples} images", "sample 1000 images")
            print(f"  {label:<56} {t * k:>9.0f}s {d * k:>9.0f}s  (extrapolated)")
    if "big" in res:
        bd, bt = res["big"]["dblocks"], res["big"]["torch"]
        mem_t = f"{bt['peak_cuda_mib']:.0f} MiB CUDA peak" if "peak_cuda_mib" in bt else \
            f"{bt['peak_rss_mib']:.0f} MiB peak RSS (+{bt['rss_growth_mib']:.0f} MiB while training)"
        print(f"\none block of 4 layers, width 384, 6 heads, patch 2 (196 tokens), batch {res['big_batch']}: "
              "ms per training step")
        print(f"{'PyTorch':<10} {bt['ms_per_step']:>10.1f} ms  ({bt['steps']} steps after {bt['warmup']} warm-up; {mem_t})")
        print(f"{'dblocks':<10} {bd['ms_per_step']:>10.1f} ms  (`dblocks bench train --layers 4 --blocks 1`, second row; "
              f"rows {', '.join(f'{x:.1f}' for x in bd['ms_rows'])}; {bd['peak_mib']:.0f} MiB peak device memory)")
        print(f"{'ratio':<10} {bd['ms_per_step'] / bt['ms_per_step']:>10.2f} x")
    cpu = [(k, res[k]) for k in ("train_b3", "sample_b3", "train_b1", "sample_b1") if "torch_cpu_s" in res.get(k, {})]
    if cpu:
        print("CPU seconds (user + system, all threads; dblocks' include its start-up and dataset load): "
              + ", ".join(f"{k.replace('_b', ' B=')} PyTorch {r['torch_cpu_s']:.0f} / dblocks {r['dblocks_cpu_s']:.0f}"
                          for k, r in cpu))
    for k in ("train_b3", "train_b1"):
        if k in res:
            print(f"loss {k.replace('_', ' ')} per block (mean of the first 3 -> last 3 logged, every 10 steps): "
                  f"dblocks {fmt_losses(loss_summary(res[k]['dblocks_loss']))} | "
                  f"PyTorch {fmt_losses(loss_summary(res[k]['torch_loss']))}")
    print("\nratio = dblocks time / PyTorch time (lower is better for dblocks; the issue's goal is <= 1.5).")
    print(f"load average (1 min) at the start {res['loadavg_start'][0]:.1f}, at the end {res['loadavg_end'][0]:.1f} on "
          f"{res['cpu'].split(', ')[-1]}: above the core count, other work was sharing the cores and both sides slow down")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--dblocks", default="build/dblocks", help="dblocks binary (default build/dblocks)")
    ap.add_argument("--data", default=None, help="Fashion-MNIST IDX directory (default dblocks' own default)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: the cores)")
    ap.add_argument("--gpu", action="store_true", help="PyTorch on CUDA, big config at batch 256 on both sides")
    ap.add_argument("--quick", action="store_true", help="smoke run: 40 steps per block, 100 samples, 3 big steps")
    ap.add_argument("--steps", type=int, default=None, help="training steps per block (default 400; --quick 40)")
    ap.add_argument("--samples", type=int, default=None, help="images sampled (default 1000; --quick 100)")
    ap.add_argument("--big-steps", type=int, default=None, help="timed PyTorch steps of the big config (default 20; --quick 3)")
    ap.add_argument("--no-big", action="store_true", help="skip the width-384 configuration")
    ap.add_argument("--json", default=None, help="save every figure to this file")
    ap.add_argument("--report", default=None, help="print the table of a --json FILE again, run nothing")
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.big_child:
        return big_child(a)
    if a.report:
        with open(a.report) as f:
            return report(json.load(f))
    steps = a.steps or (40 if a.quick else 400)
    n_samples = a.samples or (100 if a.quick else 1000)
    big_steps = a.big_steps or (3 if a.quick else 20)
    big_batch = 256 if a.gpu else 32
    if not os.access(a.dblocks, os.X_OK):
        sys.exit(f"peer_bench: {a.dblocks} is not an executable dblocks binary (make all, or --dblocks PATH)")
    torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if a.gpu else "cpu")
    demo = {"width": 64, "heads": 4, "patch": 4, "layers": 6, "batch": 64, "lr": 3e-3}
    work = tempfile.mkdtemp(prefix="peer_bench-")
    db = Dblocks(a.dblocks, work, a.data, a.gpu)
    data, labels = load_idx(a.data or "/usr/share/datasets/fashion-mnist")
    data = data.to(dev)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
           "threads": a.threads, "device": str(dev), "steps_per_block": steps, "samples": n_samples,
           "dblocks": os.path.abspath(a.dblocks), "cpu": cpu_name(), "loadavg_start": os.getloadavg(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
    print(f"peer_bench: dblocks {a.dblocks} vs PyTorch {torch.__version__} ({dev}, {a.threads} threads), "
          f"{steps} steps per block, {n_samples} samples", flush=True)

    # warm-up: kernel caches for dblocks, thread pools and allocator for torch
    w = db.train("warm", demo, 3, 2)
    db.sample(w["run"], 10)
    _, warm_nets, _ = torch_train(demo, 3, 2, data, labels, dev)
    torch_sample(warm_nets, 10, dev)
    print("  warm-up done", flush=True)

    rows = []
    for B in (3, 1):
        d = db.train(f"b{B}", demo, B, steps)
        print(f"  dblocks train B={B}: {d['seconds']:.1f} s", flush=True)
        c0 = time.process_time()
        t, nets, curves = torch_train(demo, B, steps, data, labels, dev)
        tc = time.process_time() - c0
        print(f"  PyTorch train B={B}: {t:.1f} s", flush=True)
        print(f"    loss per block (first -> last logged, every 10 steps): dblocks {fmt_losses(loss_summary(d['curves']))}"
              f" | PyTorch {fmt_losses(loss_summary(curves))}", flush=True)
        res[f"train_b{B}"] = {"dblocks_s": d["seconds"], "dblocks_wall_s": d["wall"], "torch_s": t,
                              "dblocks_cpu_s": d["cpu"], "torch_cpu_s": tc,
                              "dblocks_loss": d["curves"], "torch_loss": curves}
        rows.append((f"train B = {B} ({B} x {steps} steps of a {demo['layers'] // B}-layer block)", t, d["seconds"],
                     400 / steps))
        ds = db.sample(d["run"], n_samples)
        print(f"  dblocks sample B={B}: {ds['seconds']:.1f} s", flush=True)
        c0 = time.process_time()
        ts = torch_sample(nets, n_samples, dev)
        tc = time.process_time() - c0
        print(f"  PyTorch sample B={B}: {ts:.1f} s", flush=True)
        res[f"sample_b{B}"] = {"dblocks_s": ds["seconds"], "dblocks_wall_s": ds["wall"], "torch_s": ts,
                               "dblocks_cpu_s": ds["cpu"], "torch_cpu_s": tc}
        rows.append((f"sample {n_samples} images, 50 Euler steps, guidance 2, B = {B}", ts, ds["seconds"],
                     1000 / n_samples))

    big = None
    if not a.no_big:
        bd = db.bench_big(big_batch)
        print(f"  dblocks bench train (4 layers, width 384, batch {big_batch}): {bd['ms_per_step']:.1f} ms/step", flush=True)
        child = [sys.executable, os.path.abspath(__file__), "--big-child", "--threads", str(a.threads), "--batch",
                 str(big_batch), "--steps", str(big_steps)] + (["--gpu"] if a.gpu else [])
        p = subprocess.run(child, capture_output=True, text=True)
        m = re.search(r"^PEER_BIG (.*)$", p.stdout, re.M)
        if p.returncode or not m:
            sys.exit(f"peer_bench: the PyTorch big-config child failed:\n{p.stdout}\n{p.stderr}")
        bt = json.loads(m.group(1))
        print(f"  PyTorch (same block): {bt['ms_per_step']:.1f} ms/step", flush=True)
        res["big"] = {"dblocks": bd, "torch": bt}
        big = (bd, bt)

    res["loadavg_end"] = os.getloadavg()
    res["rows"] = rows
    res["big_batch"] = big_batch
    res["big_device"] = big[0]["device"] if big else None
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    report(res)
    if a.json:
        print(f"saved {a.json}")
    shutil.rmtree(work, ignore_errors=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
