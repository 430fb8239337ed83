"""Training for stylegan_sdk: data, losses, discriminators, the loop, metrics.

    python -m training.dataset_tool --source DIR|ZIP --dest OUT.zip --resolution R
    python -m training.run --data PATH --outdir DIR --arch stylegan2|stylegan1 --cfg cpu --kimg K
    python -m training.metrics --model M --data PATH --metrics fid50k_full,ppl_wend

Files, in the order a run uses them: presets.py (TrainingOptions + --cfg presets), dataset.py,
networks_d.py (discriminators), losses.py, loop.py, state.py (training state), run.py (CLI),
metrics/ (FID, PPL, precision/recall and their feature networks).

Training uses the library (stylegan_sdk.models, checkpoint, fileio); the library never imports it.
"""
