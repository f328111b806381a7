// Hover hints (title attributes) for the AnimateDiff controls on txt2img and img2img.
//
// The hints are declared with the parameters in Python (motion_module/request/params.py)
// and arrive as JSON in the hidden element `.animatediff-hints` that the accordion renders;
// keys are elem_id suffixes ("animatediff-{tab}-{suffix}"). Gradio may re-render a
// component, so titles are re-checked after UI updates; an element whose title is
// already the hint is left alone, which makes repeated runs harmless.

(function() {
    "use strict";

    var TABS = ["txt2img", "img2img"];
    var hints = null;

    function translate(text) {
        // The WebUI's localization table, when a localization is active.
        if (typeof localization !== "undefined" && localization && localization[text]) {
            return localization[text];
        }
        return text;
    }

    function loadHints(app) {
        if (hints) return hints;
        var holder = app.querySelector(".animatediff-hints");
        if (!holder) return null;
        try {
            hints = JSON.parse(holder.getAttribute("data-hints"));
        } catch (e) {
            hints = {};
        }
        return hints;
    }

    function applyHints() {
        var app = gradioApp();
        var table = loadHints(app);
        if (!table) return;
        for (var t = 0; t < TABS.length; t++) {
            for (var suffix in table) {
                if (!Object.prototype.hasOwnProperty.call(table, suffix)) continue;
                var elem = app.getElementById("animatediff-" + TABS[t] + "-" + suffix);
                if (!elem) continue;
                var hint = translate(table[suffix]);
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
