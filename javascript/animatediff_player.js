// The MP4/WEBM videos of a generation, played under the gallery of txt2img and img2img.
//
// The WebUI's page starts each generation's progress bar with
// requestProgress(taskId, "<tab>_gallery_container", ...), and calls its last
// argument when the generation is over. We wrap requestProgress to learn the task
// id (the gallery and everything else are left as they are), remove the previous
// player of that tab, and when the generation ends ask
// ./animatediff/v1/videos?task=... which files AnimateDiff wrote for it
// (animatediff_webui/player.py). Files come as ./file=... URLs, the WebUI's own file
// route; a file that route would refuse is listed by name with the reason.
// Everything is built with DOM calls and textContent: no HTML from the server.

(function() {
    "use strict";

    var TABS = {txt2img_gallery_container: "txt2img", img2img_gallery_container: "img2img"};
    var AUTOPLAY_MAX = 8; // more videos than this (an X/Y/Z grid) start paused
    var RETRIES = 900; // a task still queued or running when its progress bar ended: ask again (30 min)
    var latest = {}; // tab -> the task whose videos the tab shows (or will)

    function element(tag, className, text) {
        var elem = document.createElement(tag);
        if (className) elem.className = className;
        if (text !== undefined) elem.textContent = text;
        return elem;
    }

    function playerId(tab) {
        return "animatediff-" + tab + "-player";
    }

    function removePlayer(tab) {
        var old = document.getElementById(playerId(tab));
        if (old) {
            var videos = old.getElementsByTagName("video");
            for (var i = 0; i < videos.length; i++) videos[i].pause();
            old.parentNode.removeChild(old);
        }
    }

    function links(video) {
        var row = element("div", "animatediff-player-files");
        row.appendChild(element("span", "animatediff-player-name", video.name));
        video.files.forEach(function(file) {
            if (file.url) {
                var link = element("a", "animatediff-player-download", file.format);
                link.href = "./" + file.url;
                link.download = file.name;
                link.title = "Download " + file.name;
                row.appendChild(link);
            } else {
                row.appendChild(element("span", "animatediff-player-unserved", file.folder + "/" + file.name));
            }
        });
        return row;
    }

    function player(video, autoplay) {
        var box = element("div", "animatediff-player-video");
        if (video.playable) {
            var tag = element("video");
            tag.loop = true;
            tag.muted = true; // also the attribute: autoplay needs muted at load time
            tag.setAttribute("muted", "");
            tag.controls = true;
            tag.playsInline = true;
            tag.setAttribute("playsinline", "");
            tag.preload = autoplay ? "auto" : "metadata";
            tag.autoplay = autoplay;
            video.files.forEach(function(file) {
                if (file.mime && file.url) {
                    var source = element("source");
                    source.src = "./" + file.url;
                    source.type = file.mime;
                    tag.appendChild(source);
                }
            });
            box.appendChild(tag);
        }
        box.appendChild(links(video));
        if (video.note) box.appendChild(element("div", "animatediff-player-note", "Not playable here: " + video.note + "."));
        return box;
    }

    function show(tab, answer) {
        var shown = answer.videos.filter(function(v) {
            return v.files.some(function(f) {
                return f.format === "MP4" || f.format === "WEBM";
            });
        });
        removePlayer(tab);
        var gallery = document.getElementById(tab + "_gallery_container");
        if (!shown.length || !gallery) return;
        var panel = element("div", "animatediff-player");
        panel.id = playerId(tab);
        shown.forEach(function(video) {
            panel.appendChild(player(video, shown.length <= AUTOPLAY_MAX));
        });
        gallery.parentNode.insertBefore(panel, gallery.nextSibling);
    }

    function fetchVideos(tab, task, retries) {
        if (latest[tab] !== task) return;
        fetch("./animatediff/v1/videos?task=" + encodeURIComponent(task), {credentials: "same-origin"})
            .then(function(response) {
                return response.ok ? response.json() : null;
            })
            .then(function(answer) {
                if (!answer || latest[tab] !== task) return;
                if ((answer.state === "queued" || answer.state === "running") && retries > 0) {
                    setTimeout(function() {
                        fetchVideos(tab, task, retries - 1);
                    }, 2000);
                    return;
                }
                show(tab, answer);
            })
            .catch(function(e) {
                console.warn("AnimateDiff: could not list the videos of " + task, e);
            });
    }

    function watch(original) {
        return function(idTask, progressbarContainer, gallery, atEnd) {
            var tab = progressbarContainer && TABS[progressbarContainer.id];
            if (tab && typeof idTask === "string") {
                latest[tab] = idTask;
                removePlayer(tab);
                var args = Array.prototype.slice.call(arguments);
                args[3] = function() {
                    try {
                        if (typeof atEnd === "function") return atEnd.apply(this, arguments);
                    } finally {
                        fetchVideos(tab, idTask, RETRIES);
                    }
                };
                return original.apply(this, args);
            }
            return original.apply(this, arguments);
        };
    }

    function install() {
        if (typeof window.requestProgress !== "function" || window.requestProgress.animatediffPlayer) return;
        window.requestProgress = watch(window.requestProgress);
        window.requestProgress.animatediffPlayer = true;
    }

    install(); // the WebUI's scripts are loaded before extensions' ones
    if (typeof onUiLoaded === "function") onUiLoaded(install);
})();
