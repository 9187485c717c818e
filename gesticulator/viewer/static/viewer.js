// gesticulator viewer: plays motion.glb (skinned mannequin + animation) in sync with the speech,
// with a strip of the transcript words and the semantic gestures from timeline.json.
// The <audio> element is the clock: every frame the animation is set to audio.currentTime.
// window.viewer exposes the state (ready, frames, error, events, ...) for tests.
import * as THREE from 'three';
import { GLTFLoader } from './vendor/three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from './vendor/three/addons/controls/OrbitControls.js';

const $ = (id) => document.getElementById(id);
const state = { ready: false, frames: 0, error: null, events: 0, words: 0, duration: 0, time: 0, meshes: 0, bones: 0 };
window.viewer = state;

function fail(message) {
  state.error = message;
  document.body.dataset.state = 'error';
  $('message').textContent = message;
  console.error(message);
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

const fmt = (t) => (Math.round(t * 100) / 100).toFixed(2);
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// -- the clock: the audio element, or a virtual clock when there is no audio ----------------------
class Clock {
  constructor(audio, duration) {
    this.audio = audio;
    this.duration = duration;
    this.virtual = 0;
    this.playing = false;
    this.last = 0;
    this.rate = 1;
  }
  get time() {
    if (this.audio) return this.audio.currentTime;
    if (this.playing) {
      const now = performance.now();
      this.virtual += ((now - this.last) / 1000) * this.rate;
      this.last = now;
      if (this.virtual >= this.duration) {
        this.virtual = this.duration;
        this.playing = false;
        document.dispatchEvent(new Event('clockpause'));
      }
    }
    return this.virtual;
  }
  get paused() {
    return this.audio ? this.audio.paused : !this.playing;
  }
  seek(t) {
    t = Math.min(Math.max(t, 0), this.duration);
    if (this.audio) this.audio.currentTime = t;
    else this.virtual = t;
  }
  play() {
    if (this.time >= this.duration - 1e-3) this.seek(0);
    if (this.audio) {
      this.audio.play().catch((e) => console.warn('audio did not start:', e.message));
    } else {
      this.playing = true;
      this.last = performance.now();
      document.dispatchEvent(new Event('clockplay'));
    }
  }
  pause() {
    if (this.audio) this.audio.pause();
    else {
      this.time; // bank the elapsed time
      this.playing = false;
      document.dispatchEvent(new Event('clockpause'));
    }
  }
  setRate(rate) {
    this.rate = rate;
    if (this.audio) this.audio.playbackRate = rate;
  }
}

// -- the 3D stage -----------------------------------------------------------------------------------
function makeStage(canvas) {
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: true, alpha: true, preserveDrawingBuffer: true });
  } catch (e) {
    throw new Error(`WebGL is not available in this browser (${e.message})`);
  }
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.shadowMap.enabled = true;
  renderer.shadowMap.type = THREE.PCFShadowMap;
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(30, 1, 0.05, 100);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8580, 1.6));
  const sun = new THREE.DirectionalLight(0xffffff, 2.4);
  sun.position.set(1.2, 4.0, 3.0);
  sun.castShadow = true;
  sun.shadow.mapSize.set(1024, 1024);
  sun.shadow.radius = 3;
  Object.assign(sun.shadow.camera, { left: -1.5, right: 1.5, top: 1.5, bottom: -1.5, near: 0.5, far: 12 });
  scene.add(sun, sun.target);
  const fill = new THREE.DirectionalLight(0xfff1e0, 0.6);
  fill.position.set(-2.5, 1.5, 1.0);
  scene.add(fill);
  const ground = new THREE.Mesh(
    new THREE.CircleGeometry(0.85, 64),
    new THREE.MeshStandardMaterial({ color: 0xd8d2c6, roughness: 1.0 }),
  );
  ground.rotation.x = -Math.PI / 2;
  ground.receiveShadow = true;
  scene.add(ground);
  const controls = new OrbitControls(camera, canvas);
  controls.enableDamping = true;
  const resize = () => {
    const { clientWidth: w, clientHeight: h } = canvas.parentElement;
    if (!w || !h) return;
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
  };
  new ResizeObserver(resize).observe(canvas.parentElement);
  resize();
  return { renderer, scene, camera, controls, ground, sun, resize };
}

function frameFigure(stage, figure) {
  const box = new THREE.Box3().setFromObject(figure, true);
  const size = box.getSize(new THREE.Vector3());
  const centre = box.getCenter(new THREE.Vector3());
  stage.ground.position.set(centre.x, box.min.y, centre.z);
  stage.sun.target.position.copy(centre);
  stage.sun.position.set(centre.x + 1.2, box.min.y + 4.0, centre.z + 3.0);
  const height = Math.max(size.y, 0.5);
  const fov = THREE.MathUtils.degToRad(stage.camera.fov);
  const fit = (height * 0.62) / Math.tan(fov / 2);
  const widthFit = (Math.max(size.x, 1.0) * 0.62) / Math.tan(fov / 2) / Math.max(stage.camera.aspect, 0.3);
  const dist = Math.max(fit, widthFit);
  const angle = THREE.MathUtils.degToRad(18); // a three-quarter view from the figure's left-front
  const target = new THREE.Vector3(centre.x, box.min.y + height * 0.47, centre.z);
  stage.camera.position.set(target.x + dist * Math.sin(angle), target.y + height * 0.05, target.z + dist * Math.cos(angle));
  stage.controls.target.copy(target);
  stage.controls.update();
}

// -- the timeline strip -----------------------------------------------------------------------------
function eventSpan(e) {
  const placed = e.retract_end > e.prep_start && e.status === 'placed';
  return placed ? [e.prep_start, e.retract_end] : [Math.max(e.apex - 0.3, 0), e.apex + 0.3];
}

function buildStrip(timeline, duration, clock, select) {
  const strip = $('strip');
  const inner = $('strip-inner');
  const pps = Math.max(140, (strip.clientWidth - 24) / Math.max(duration, 0.1)); // px per second
  inner.style.width = `${Math.ceil(duration * pps) + 24}px`;
  const x = (t) => `${t * pps}px`;
  const ruler = $('ruler');
  const step = pps >= 140 ? 0.5 : pps >= 45 ? 1 : 5;
  for (let t = 0; t <= duration + 1e-6; t += step) {
    const tick = document.createElement('div');
    tick.className = 'tick';
    tick.style.left = x(t);
    tick.textContent = Number.isInteger(t) ? `${t}s` : '';
    ruler.appendChild(tick);
  }
  ruler.addEventListener('click', (ev) => {
    const rect = inner.getBoundingClientRect();
    clock.seek((ev.clientX - rect.left) / pps);
  });
  const words = timeline?.transcript?.words || [];
  const wordEls = words.map((w, i) => {
    const el = document.createElement('div');
    el.className = 'word';
    el.style.left = x(w.start);
    el.style.width = `${Math.max((w.end - w.start) * pps - 1, 3)}px`;
    el.textContent = w.word;
    el.title = `${w.word}  ${fmt(w.start)}–${fmt(w.end)} s`;
    el.dataset.index = i;
    el.dataset.start = w.start;
    el.addEventListener('click', () => clock.seek(w.start));
    $('words').appendChild(el);
    return el;
  });
  const events = timeline?.events || [];
  // Overlapping gestures (chains) go on separate lanes.
  const lanes = [];
  const laneOf = events.map((e) => {
    const [s, t] = eventSpan(e);
    let lane = lanes.findIndex((end) => end <= s + 1e-6);
    if (lane < 0) lane = lanes.push(0) - 1;
    lanes[lane] = t;
    return lane;
  });
  const laneHeight = 34 / Math.max(lanes.length, 1);
  const eventEls = events.map((e, i) => {
    const [s, t] = eventSpan(e);
    const el = document.createElement('div');
    el.className = `event ${e.status}`;
    el.style.left = x(s);
    el.style.width = `${Math.max((t - s) * pps, 6)}px`;
    el.style.top = `${5 + laneOf[i] * laneHeight}px`;
    el.style.height = `${laneHeight - (lanes.length > 1 ? 2 : 0)}px`;
    if (e.status === 'placed' && e.stroke_end > e.stroke_start) {
      const stroke = document.createElement('div');
      stroke.className = 'stroke';
      stroke.style.left = x(e.stroke_start - s);
      stroke.style.width = x(e.stroke_end - e.stroke_start);
      el.appendChild(stroke);
    }
    const apex = document.createElement('div');
    apex.className = 'apex';
    apex.style.left = x(e.apex - s);
    el.appendChild(apex);
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = e.gesture_id;
    if (lanes.length > 1) label.style.top = `${Math.max(laneHeight / 2 - 9, 0)}px`;
    el.appendChild(label);
    el.title = `${e.gesture_id} on “${e.word}” (${e.status}) apex ${fmt(e.apex)} s`;
    el.dataset.index = i;
    el.dataset.gesture = e.gesture_id;
    el.dataset.start = s;
    el.addEventListener('click', (ev) => {
      ev.stopPropagation();
      clock.seek(s);
      select(i);
    });
    $('events').appendChild(el);
    return el;
  });
  return { pps, wordEls, eventEls, words, events };
}

function describe(e) {
  const arms = (e.active_arms || []).join(' + ') || '–';
  const bits = [
    `<b>${escapeHtml(e.gesture_id)}</b> on “${escapeHtml(e.word)}”`,
    `apex ${fmt(e.apex)} s`,
    e.status === 'placed' ? `${fmt(e.prep_start)}–${fmt(e.retract_end)} s` : escapeHtml(e.status),
    `arms ${escapeHtml(arms)}`,
    `take ${escapeHtml(e.take ?? '–')}`,
    `${escapeHtml(e.source)} ${Number(e.confidence).toFixed(2)}`,
  ];
  if (e.reason) bits.push(escapeHtml(e.reason));
  if (e.note) bits.push(escapeHtml(e.note));
  return bits.join(' · ');
}

// -- main -------------------------------------------------------------------------------------------
async function main() {
  const manifest = await getJSON('/data/manifest.json');
  document.title = `${manifest.title} — gesticulator viewer`;
  $('title').textContent = manifest.title;
  const timeline = manifest.timeline ? await getJSON(manifest.timeline) : null;

  const audio = $('audio');
  let audioReady = Promise.resolve();
  if (manifest.audio) {
    audioReady = new Promise((resolve) => {
      audio.addEventListener('loadedmetadata', resolve, { once: true });
      audio.addEventListener('error', () => {
        console.warn('audio failed to load');
        resolve();
      }, { once: true });
    });
    audio.src = manifest.audio;
  } else {
    audio.style.display = 'none';
  }

  $('message').textContent = 'loading the figure…';
  const stage = makeStage($('canvas'));
  const gltf = await new GLTFLoader().loadAsync(manifest.glb);
  const figure = gltf.scene;
  figure.traverse((o) => {
    if (o.isMesh) {
      o.castShadow = true;
      o.frustumCulled = false; // the skinned figure moves away from its bind pose
      state.meshes += 1;
    }
    if (o.isBone) state.bones += 1;
  });
  stage.scene.add(figure);
  const mixer = new THREE.AnimationMixer(figure);
  const clip = gltf.animations[0] || null;
  const action = clip ? mixer.clipAction(clip) : null;
  if (action) action.play();
  const pose = (t) => {
    if (!action) return;
    action.time = Math.min(Math.max(t, 0), Math.max(clip.duration - 1e-6, 0));
    mixer.update(0);
  };
  pose(0);
  figure.updateMatrixWorld(true);
  frameFigure(stage, figure);

  await audioReady;
  const hasAudio = Boolean(manifest.audio) && Number.isFinite(audio.duration) && audio.duration > 0;
  const duration = Math.max(
    clip ? clip.duration : 0,
    timeline?.inputs?.duration || 0,
    hasAudio ? audio.duration : 0,
  );
  state.duration = duration;
  const clock = new Clock(hasAudio ? audio : null, duration);

  let selected = -1;
  const select = (i) => {
    if (selected >= 0) strip.eventEls[selected].classList.remove('selected');
    selected = i;
    strip.eventEls[i].classList.add('selected');
    $('details').innerHTML = describe(strip.events[i]);
    state.selected = i;
  };
  const strip = buildStrip(timeline, duration, clock, select);
  state.events = strip.eventEls.length;
  state.words = strip.wordEls.length;
  const placed = strip.events.filter((e) => e.status === 'placed');
  for (const e of placed) {
    const w = strip.wordEls[e.word_index];
    if (w) w.classList.add('target');
  }
  const facts = [`${duration.toFixed(1)} s`];
  if (timeline) {
    facts.push(`${strip.words.length} words`, `${placed.length} gestures`, `seed ${timeline.seed}`);
    if (timeline.inputs?.transcript_from) facts.push(`words from ${timeline.inputs.transcript_from}`);
  } else facts.push('no timeline.json');
  facts.push(manifest.audio_name ? `audio ${manifest.audio_name}` : 'no audio');
  $('facts').textContent = facts.join(' · ');

  // controls
  const playButton = $('play');
  const showPlaying = () => { playButton.textContent = clock.paused ? '▶' : '❚❚'; };
  playButton.addEventListener('click', () => (clock.paused ? clock.play() : clock.pause()));
  for (const name of ['play', 'pause', 'ended']) audio.addEventListener(name, showPlaying);
  document.addEventListener('clockplay', showPlaying);
  document.addEventListener('clockpause', showPlaying);
  $('rate').addEventListener('change', (ev) => clock.setRate(Number(ev.target.value)));
  document.addEventListener('keydown', (ev) => {
    if (ev.code === 'Space' && ev.target !== audio && ev.target.tagName !== 'SELECT') {
      ev.preventDefault();
      clock.paused ? clock.play() : clock.pause();
    }
  });

  // per frame: pose, playhead, highlights, caption
  const playhead = $('playhead');
  const stripEl = $('strip');
  let wordNow = -1;
  let eventsNow = '';
  const frame = () => {
    const t = clock.time;
    state.time = t;
    pose(t);
    stage.controls.update();
    stage.renderer.render(stage.scene, stage.camera);
    const px = t * strip.pps;
    playhead.style.left = `${px}px`;
    if (!clock.paused && (px < stripEl.scrollLeft + 40 || px > stripEl.scrollLeft + stripEl.clientWidth - 40)) {
      stripEl.scrollLeft = Math.max(px - stripEl.clientWidth * 0.25, 0);
    }
    const wi = strip.words.findIndex((w) => w.start <= t && t < w.end);
    if (wi !== wordNow) {
      if (wordNow >= 0) strip.wordEls[wordNow].classList.remove('now');
      if (wi >= 0) strip.wordEls[wi].classList.add('now');
      wordNow = wi;
    }
    const active = [];
    strip.events.forEach((e, i) => {
      if (e.status === 'placed' && e.prep_start <= t && t <= e.retract_end) active.push(i);
    });
    const key = active.join(',');
    if (key !== eventsNow) {
      strip.eventEls.forEach((el, i) => el.classList.toggle('now', active.includes(i)));
      eventsNow = key;
    }
    const word = wi >= 0 ? escapeHtml(strip.words[wi].word) : '';
    // the gesture in its stroke, else the one that started last
    const inStroke = (i) => strip.events[i].stroke_start <= t && t <= strip.events[i].stroke_end;
    const shown = active.find(inStroke) ?? active[active.length - 1];
    const gesture = shown === undefined ? null : strip.events[shown];
    const mark = shown !== undefined && inStroke(shown) ? '*' : '';
    $('caption').innerHTML = gesture ? `<span class="gesture">${escapeHtml(gesture.gesture_id)}${mark}</span>${word}` : word;
    $('clock').textContent = `${fmt(t)} / ${fmt(duration)} s`;
    state.frames += 1;
    if (!state.ready && state.frames >= 2) {
      state.ready = true;
      document.body.dataset.state = 'ready';
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

main().catch((e) => fail(`could not load the animation: ${e.message}`));
