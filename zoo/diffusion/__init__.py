"""Diffusion shared by the zoo's generative papers: schedules, parameterisations, losses, samplers.

W.A.L.T (§3, Table 8): 1000 discrete steps, linear β 1e-4 → 0.02 rescaled to zero terminal SNR
(Lin et al. 2023), v-prediction, DDIM with 50 steps, classifier-free guidance.
"""
from zoo.diffusion.schedules import DiffusionSchedule, linear_betas, make_schedule, rescale_zero_terminal_snr
from zoo.diffusion.parameterization import (predict_eps, predict_x0, predict_v, q_sample, target_for,
                                            x0_from_prediction)
from zoo.diffusion.losses import diffusion_loss
from zoo.diffusion.samplers import classifier_free_guidance, ddim_sample, ddpm_sample, ddim_timesteps
