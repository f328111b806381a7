// Hover hints (title attributes) for the AnimateDiff controls on txt2img and img2img.
//
// The extension's components have elem_id "animatediff-{tab}-{suffix}". The WebUI
// loads every file in an extension's javascript/ folder and provides
// onUiLoaded / onAfterUiUpdate (script.js). Gradio may re-render a component,
// so the titles are re-checked after UI updates; an element whose title is
// already the hint is left alone, which makes repeated runs harmless.
// Ranges and defaults follow motion_module/params.py and motion_module/context.py.

(function() {
    "use strict";

    var TABS = ["txt2img", "img2img"];

    var HINTS = {
        "enable": "Generate a video instead of separate images. While enabled, the WebUI batch size is replaced " +
            "by the number of frames; use Batch count for several videos. Default: off.",
        "motion-module": "Motion module file from the extension's model folder (or the folder set in " +
            "Settings > AnimateDiff). Its kind (v1, v2, v3, AnimateLCM, AnimateDiff-SDXL, HotShot-XL) is " +
            "detected from the file. Only modules for the loaded checkpoint's family (SD1.5 or SDXL) are " +
            "listed: press the refresh button after switching checkpoints.",
        "motion-module-refresh": "Scan the motion module folder again (after adding or removing files).",
        "video-length": "Number of frames, 0-10000. 0 (default) = automatic: the frame count of the video " +
            "source / video path when one is given, otherwise the context batch size. More frames than the " +
            "context batch size are generated in overlapping context windows.",
        "fps": "Frames per second of the saved video, 1-240 (default 8). 16 frames at 8 FPS last 2 seconds.",
        "loop-number": "How many times GIF and WEBP play: 0 (default) = loop forever, N = shown N times in " +
            "total. MP4 and WEBM have no loop setting.",
        "batch-size": "Context batch size: frames the motion module sees in one pass, 1-64 (default 16). " +
            "The frames per pass cannot exceed the module's position-encoding length: 24 for v1 and HotShot-XL, 32 for v2, v3 " +
            "and AnimateDiff-SDXL, 64 for AnimateLCM. 16 suits the SD1.5 modules, 8 HotShot-XL.",
        "closed-loop": "How context windows treat the end of the clip; only used when the number of frames " +
            "is larger than the context batch size. N: no contiguous window joins the last frames to the " +
            "first. R-P (default) and R+P (same windows): a window wraps around only where it crosses the end. " +
            "A: extra wrap-around windows for a stronger loop; for a clip that fits in one window, A appends " +
            "the reversed frames (ping-pong).",
        "stride": "Number of dilation levels of the context windows, 1-16 (default 1 = contiguous windows " +
            "only). 2 adds windows of every 2nd frame, 3 also every 4th frame, and so on, capped at what the " +
            "clip length needs. Only used when the number of frames is larger than the context batch size.",
        "overlap": "Frames shared by neighbouring context windows, -1 to context batch size - 1. -1 (default) " +
            "= context batch size / 4 (rounded down). More overlap gives smoother seams but more UNet passes. " +
            "Only used when the number of frames is larger than the context batch size.",
        "save-format": "Output formats: GIF, MP4, WEBP, WEBM, PNG (the frames) and TXT (the infotext beside " +
            "the video). Choose at least one of GIF, MP4, WEBP, WEBM, PNG. The default comes from " +
            "Settings > AnimateDiff (GIF and PNG).",
        "interp-choice": "Frame interpolation after generation: Off (default); FILM (needs the Deforum " +
            "extension and a CUDA GPU; if it cannot run, a warning is logged and the frames are kept as " +
            "they are); Linear (built-in cross-fade between neighbouring frames, no motion estimation).",
        "interp-x": "Interpolation factor, 2-100 (default 10): the video gets about X times as many frames. " +
            "Raise FPS by the same factor to keep the duration.",
        "video-source": "Optional source video. Uploading it copies its frame count and FPS into Number of " +
            "frames and FPS; with Number of frames 0 its frame count is used, and a larger number is capped " +
            "at it. Its frames are not passed to ControlNet: give ControlNet units their own input.",
        "video-path": "Optional folder of frame images (png, jpg, jpeg, webp, bmp) on the server, used like " +
            "Video source for the frame count when no video is uploaded.",
        "latent-power": "img2img: how fast frames move away from the init image, 0.1-10 (default 1). Frame i " +
            "keeps max(0, 1 - i^power / scale) of the image and gets the rest as noise: a higher power means " +
            "more motion.",
        "latent-scale": "img2img: 1-128 (default 32). A higher scale keeps the frames closer to the init " +
            "image for longer (less motion).",
        "last-frame": "img2img, optional: an image for the video to end on. It is blended in from the last " +
            "frame backwards with the two 'last frame' sliders.",
        "latent-power-last": "img2img with a last frame: like Latent power, counted from the end of the " +
            "video, 0.1-10 (default 1).",
        "latent-scale-last": "img2img with a last frame: like Latent scale, counted from the end of the " +
            "video, 1-128 (default 32).",
        "unload": "Move the loaded motion module to the CPU to free VRAM; it goes back to the GPU on the next " +
            "run.",
        "remove": "Remove the loaded motion module from memory (RAM and VRAM); it is read from disk again on " +
            "the next run."
    };

    function translate(text) {
        // The WebUI's localization table, when a localization is active.
        if (typeof localization !== "undefined" && localization && localization[text]) {
            return localization[text];
        }
        return text;
    }

    function applyHints() {
        var app = gradioApp();
        for (var t = 0; t < TABS.length; t++) {
            for (var suffix in HINTS) {
                if (!Object.prototype.hasOwnProperty.call(HINTS, suffix)) continue;
                var elem = app.getElementById("animatediff-" + TABS[t] + "-" + suffix);
                if (!elem) continue;
                var hint = translate(HINTS[suffix]);
                if (elem.title !== hint) {
                    elem.title = hint;
                }
            }
        }
    }

    onUiLoaded(applyHints);
    if (typeof onAfterUiUpdate === "function") {
        onAfterUiUpdate(applyHints);
    }
})();
