"""One recipe (a Task subclass) per trainable name. Imported explicitly: each module is one family."""
from __future__ import annotations

from .classify import AlexNetTask, LeNetTask, MLPTask, PerceptronTask
from .autoencoders import ConvAutoencoderTask, LLNetTask
from .generative import DCGANTask, VAETask

RECIPES = {t.name: t for t in (PerceptronTask, MLPTask, LeNetTask, AlexNetTask, ConvAutoencoderTask, LLNetTask,
                               VAETask, DCGANTask)}

# Adversarial pairs: the trainable name -> the zoo networks it trains together.
PAIRS = {"dcgan": ("dcgan_generator", "dcgan_discriminator"), "srgan": ("srgan_generator", "srgan_discriminator"),
         "stylegan_xl": ("stylegan_xl_generator", "stylegan_xl_discriminator")}
# Names for which a recipe belongs to a later issue.
NOT_YET = {"srgan": "the SRGAN recipe (perceptual + adversarial loss) belongs to a later issue",
           "stylegan_xl": "the StyleGAN-XL recipe (projected discriminator, hinge loss) belongs to a later issue"}
