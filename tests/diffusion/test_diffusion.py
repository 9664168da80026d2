"""Schedules, parameterisations and samplers against closed forms."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import diffusion
from zoo.diffusion import parameterization as param


def test_linear_schedule_and_zero_terminal_snr():
  betas = diffusion.linear_betas(1000)
  assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
  rescaled = diffusion.rescale_zero_terminal_snr(betas)
  abar_old, abar_new = np.cumprod(1 - betas), np.cumprod(1 - rescaled)
  assert abar_new[-1] == pytest.approx(0.0, abs=1e-12)          # SNR(T) = 0: pure noise at the end.
  assert abar_new[0] == pytest.approx(abar_old[0], rel=1e-9)     # The first step is unchanged.
  assert np.all(np.diff(abar_new) < 0)
  assert abar_old[-1] > 1e-5                                    # The plain schedule leaks signal (Lin et al.).
  schedule = diffusion.make_schedule(zero_terminal_snr=True)
  assert float(schedule.alphas_cumprod[-1]) == 0.0 and float(schedule.snr(jnp.array(999))) == 0.0


@pytest.mark.parametrize("zero_snr", [True, False])
def test_parameterisations_round_trip(zero_snr):
  schedule = diffusion.make_schedule(zero_terminal_snr=zero_snr)
  key = jax.random.key(0)
  x0 = jax.random.normal(key, (6, 3, 4))
  noise = jax.random.normal(jax.random.fold_in(key, 1), x0.shape)
  t = jnp.array([0, 1, 10, 500, 998, 999])
  x_t = param.q_sample(schedule, x0, t, noise)
  v = param.predict_v(schedule, x0, t, noise)
  np.testing.assert_allclose(param.predict_x0(schedule, x_t, t, v), x0, atol=2e-5)
  np.testing.assert_allclose(param.predict_eps(schedule, x_t, t, v), noise, atol=2e-5)
  for prediction, output in [("v", v), ("x0", x0)]:
    x0_hat, eps_hat = param.x0_from_prediction(prediction, schedule, x_t, t, output)
    np.testing.assert_allclose(x0_hat, x0, atol=2e-5)
    # ε is undefined from an x0 prediction at t=0 only up to float precision; skip that column.
    np.testing.assert_allclose(eps_hat[1:], noise[1:], atol=5e-3 if prediction == "x0" else 2e-5)


MU, STD = 1.5, 0.5


def _optimal_v_denoiser(schedule):
  """For data x0 ~ N(μ, s²), E[x0 | x_t] is linear in x_t; returned as a v-prediction network."""
  def denoise(x_t, t, x0_previous):
    del x0_previous
    abar = schedule.alphas_cumprod[t][:, None]
    x0 = MU + jnp.sqrt(abar) * STD**2 / (abar * STD**2 + 1 - abar) * (x_t - jnp.sqrt(abar) * MU)
    return (jnp.sqrt(abar) * x_t - x0) / jnp.sqrt(1 - abar)
  return denoise


@pytest.mark.parametrize("sampler, kwargs", [
    (diffusion.ddim_sample, dict(num_steps=50, eta=0.0)),
    # η = 1 with large jumps samples x_s around the posterior *mean* of x0 and under-disperses (std 0.44
    # at 50 steps, measured); it converges to DDPM as the steps shrink.
    (diffusion.ddim_sample, dict(num_steps=250, eta=1.0)),
    (diffusion.ddpm_sample, {}),
])
def test_samplers_recover_a_gaussian_with_the_optimal_denoiser(sampler, kwargs):
  schedule = diffusion.make_schedule(zero_terminal_snr=True)
  samples = jax.jit(lambda key: sampler(_optimal_v_denoiser(schedule), schedule, (4000, 1), key,
                                        prediction="v", **kwargs))(jax.random.key(3))
  assert samples.shape == (4000, 1) and np.isfinite(np.asarray(samples)).all()
  assert float(samples.mean()) == pytest.approx(MU, abs=0.05)
  assert float(samples.std()) == pytest.approx(STD, rel=0.06)


def test_ddim_eta0_is_deterministic_given_the_start():
  schedule = diffusion.make_schedule()
  denoise = _optimal_v_denoiser(schedule)
  x_init = jnp.linspace(-2, 2, 8)[:, None]
  a = diffusion.ddim_sample(denoise, schedule, (8, 1), jax.random.key(0), x_init=x_init, num_steps=20)
  b = diffusion.ddim_sample(denoise, schedule, (8, 1), jax.random.key(1), x_init=x_init, num_steps=20)
  np.testing.assert_allclose(a, b, atol=1e-6)
  # The ODE map is monotone: ordering of the initial noise is kept.
  assert np.all(np.diff(np.asarray(a)[:, 0]) > 0)


def test_ddim_timesteps_start_at_pure_noise():
  steps = diffusion.ddim_timesteps(1000, 50)
  assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 50 and np.all(np.diff(steps) < 0)


def test_classifier_free_guidance():
  cond, uncond = jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0])
  np.testing.assert_allclose(diffusion.classifier_free_guidance(cond, uncond, 1.0), cond)
  np.testing.assert_allclose(diffusion.classifier_free_guidance(cond, uncond, 0.0), uncond)
  np.testing.assert_allclose(diffusion.classifier_free_guidance(cond, uncond, 3.0), [3.0, 4.0])


def test_loss_is_zero_for_a_perfect_x0_model_and_positive_otherwise():
  schedule = diffusion.make_schedule()
  x0 = jnp.full((4, 2, 3), 0.7)
  perfect, _ = diffusion.diffusion_loss(lambda x_t, t: jnp.full_like(x_t, 0.7), schedule, x0,
                                        jax.random.key(0), prediction="x0")
  wrong, metrics = diffusion.diffusion_loss(lambda x_t, t: jnp.zeros_like(x_t), schedule, x0,
                                            jax.random.key(0), prediction="x0")
  assert float(perfect) == 0.0
  assert float(wrong) == pytest.approx(0.49, rel=1e-5) and "diffusion_mse" in metrics
  with pytest.raises(ValueError, match="Unknown prediction"):
    diffusion.diffusion_loss(lambda x_t, t: x_t, schedule, x0, jax.random.key(0), prediction="score")


@pytest.mark.parametrize("prediction", ["v", "eps", "x0"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_the_true_x0_oracle_recovers_x0(prediction, eta):
  """A denoiser that knows x0 answers each parameterisation exactly; DDIM must land on x0 (any η)."""
  schedule = diffusion.make_schedule(zero_terminal_snr=True)
  x0 = jax.random.normal(jax.random.key(7), (3, 5))

  def oracle(x_t, t, x0_previous):
    del x0_previous
    abar = schedule.alphas_cumprod[t][:, None]
    eps = (x_t - jnp.sqrt(abar) * x0) / jnp.sqrt(jnp.maximum(1 - abar, 1e-12))
    return {"x0": x0, "eps": eps, "v": jnp.sqrt(abar) * eps - jnp.sqrt(1 - abar) * x0}[prediction]

  samples = diffusion.ddim_sample(oracle, schedule, x0.shape, jax.random.key(0), num_steps=25, eta=eta,
                                  prediction=prediction)
  np.testing.assert_allclose(samples, x0, atol=1e-4)
