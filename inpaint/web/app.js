// DeepFill v2 web page: paint a hole over a photo, send both to the REST API, show the result.
//
// The mask is painted on an offscreen canvas at the photo's own resolution (`mask`); pointer
// positions are mapped from the displayed box to image pixels, so window zoom and CSS scaling do
// not matter. Strokes are kept as vectors (`history`): undo replays them, no bitmap copies.
// Pointer events cover mouse, pen and touch (`touch-action: none` on the canvas).
// With an edge-guided model (/healthz says "guided"), the guide brush draws edge lines on a
// second offscreen canvas (`edges`), sent as the API's `edge` file; only the lines inside the hole
// guide the fill, so only those are shown (`guides`, in another colour).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const photo = $('photo');        // shows the photo or the result, at natural resolution
  const overlay = $('overlay');    // the hole in a tint colour, same size, CSS-translucent
  const guides = $('guides');      // the guide lines inside the hole, in their own colour
  const mask = document.createElement('canvas');   // offscreen: what is sent, opaque = hole
  const edges = document.createElement('canvas');  // offscreen: the `edge` sent, opaque = line
  const cursor = $('cursor');
  const sizeInput = $('size');
  const buttons = ['undo', 'clear', 'inpaint', 'compare', 'download', 'brush', 'guide', 'eraser']
    .reduce((all, id) => ({ ...all, [id]: $(id) }), {});
  const TINT = '#ff3b3b';
  const HOLE = '#ffffff';
  const LINE = '#2ee6ff';  // how the guide lines are shown
  // Guide lines are at least this wide in image pixels: the server keeps a pixel whose opacity is
  // above 60% (the edge threshold), and an antialiased 1-pixel line can have none that opaque.
  const GUIDE_MIN_WIDTH = 2;

  const state = {
    file: null,       // the opened File (sent as is: the server decodes it as the browser shows it)
    name: 'image',
    image: null,      // HTMLImageElement of the photo
    result: null,     // { blob, image } of the last inpaint
    showing: 'photo', // or 'result'
    history: [],      // { kind: 'stroke', erase, guide, width, points: [[x, y], ...] } | { kind: 'clear' }
    stroke: null,     // the stroke being drawn
    pointerId: null,
    tool: 'brush',    // brush (the hole) | guide (edge lines) | eraser (both)
    sizes: { hole: 40, guide: 4 },  // the slider's value for the brush and eraser, and the guide's
    guided: false,    // the served model is edge-guided (from /healthz)
    busy: false,
  };

  // ---- status and buttons ----------------------------------------------------------------

  function setStatus(text, isError = false) {
    $('status').textContent = text;
    $('status').classList.toggle('error', isError);
  }

  function setState(name) {
    document.body.dataset.state = name;  // empty | ready | busy | done | error (tests wait on it)
  }

  function activeStrokes() {
    const last = state.history.map((a) => a.kind).lastIndexOf('clear');
    return state.history.slice(last + 1);
  }

  function refreshButtons() {
    const loaded = state.image !== null && !state.busy;
    buttons.undo.disabled = !loaded || state.history.length === 0;
    buttons.clear.disabled = !loaded || activeStrokes().length === 0;
    buttons.inpaint.disabled = !loaded || !activeStrokes().some((s) => !s.erase && !s.guide);
    buttons.compare.disabled = !loaded || state.result === null;
    buttons.download.disabled = !loaded || state.result === null;
    buttons.compare.setAttribute('aria-pressed', String(state.showing === 'photo' && state.result !== null));
    buttons.guide.disabled = !state.guided;
    for (const tool of ['brush', 'guide', 'eraser']) {
      buttons[tool].setAttribute('aria-pressed', String(state.tool === tool));
    }
  }

  function selectTool(tool) {
    if (tool === 'guide' && !state.guided) return;
    state.tool = tool;
    sizeInput.value = state.sizes[tool === 'guide' ? 'guide' : 'hole'];
    $('size-value').textContent = sizeInput.value;
    refreshButtons();
  }

  // ---- drawing ------------------------------------------------------------------------------

  function paint(ctx, stroke, i, colour) {
    // One dot (i = 0) or the segment from point i - 1 to i; round caps leave no gaps.
    ctx.save();
    ctx.globalCompositeOperation = stroke.erase ? 'destination-out' : 'source-over';
    ctx.fillStyle = ctx.strokeStyle = colour;
    ctx.lineWidth = stroke.width;
    ctx.lineCap = ctx.lineJoin = 'round';
    const [x, y] = stroke.points[i];
    ctx.beginPath();
    if (i === 0) {
      ctx.arc(x, y, stroke.width / 2, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      const [x0, y0] = stroke.points[i - 1];
      ctx.moveTo(x0, y0);
      ctx.lineTo(x, y);
      ctx.stroke();
    }
    ctx.restore();
  }

  function hasGuides() {
    return activeStrokes().some((s) => s.guide) || (state.stroke !== null && state.stroke.guide);
  }

  function paintStroke(stroke, i) {
    // A segment on the layers it changes: the hole (and its tint), the guide lines, or both
    // (the eraser); then the guide lines inside the hole are shown again.
    if (!stroke.guide) {
      paint(mask.getContext('2d'), stroke, i, HOLE);
      paint(overlay.getContext('2d'), stroke, i, TINT);
    }
    if (stroke.guide || stroke.erase) paint(edges.getContext('2d'), stroke, i, HOLE);
    if (hasGuides()) redrawGuides();
  }

  function tinted(ctx, source, colour) {
    // `ctx` shows the opaque pixels of `source` in `colour`.
    ctx.save();
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.drawImage(source, 0, 0);
    ctx.globalCompositeOperation = 'source-in';
    ctx.fillStyle = colour;
    ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.restore();
  }

  function redrawGuides() {
    // The guide lines inside the hole (what guides the fill), in their colour.
    const g = guides.getContext('2d');
    tinted(g, edges, LINE);
    g.save();
    g.globalCompositeOperation = 'destination-in';
    g.drawImage(mask, 0, 0);
    g.restore();
  }

  function redrawMask() {
    // Replays the strokes since the last clear on both layers, then tints them for display.
    const m = mask.getContext('2d');
    const e = edges.getContext('2d');
    m.clearRect(0, 0, mask.width, mask.height);
    e.clearRect(0, 0, edges.width, edges.height);
    for (const stroke of activeStrokes()) {
      stroke.points.forEach((_, i) => {
        if (!stroke.guide) paint(m, stroke, i, HOLE);
        if (stroke.guide || stroke.erase) paint(e, stroke, i, HOLE);
      });
    }
    tinted(overlay.getContext('2d'), mask, TINT);
    redrawGuides();
  }

  function show(which) {
    state.showing = which;
    const source = which === 'result' ? state.result.image : state.image;
    photo.getContext('2d').drawImage(source, 0, 0);
    overlay.classList.toggle('off', which === 'result');
    guides.classList.toggle('off', which === 'result');
    refreshButtons();
  }

  function fit() {
    // Displays the photo as large as the stage allows, keeping its aspect ratio (small photos
    // are enlarged for painting); the canvases keep their natural resolution.
    if (!state.image) return;
    const stage = $('stage');
    const style = getComputedStyle(stage);
    const width = stage.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = stage.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const scale = Math.min(width / photo.width, height / photo.height);
    photo.style.width = `${Math.max(1, Math.floor(photo.width * scale))}px`;
    photo.style.height = `${Math.max(1, Math.floor(photo.height * scale))}px`;
  }
  window.addEventListener('resize', fit);

  // Pointer position -> image pixel, through the canvas' displayed box (any zoom or CSS size).
  function toImage(event) {
    const box = overlay.getBoundingClientRect();
    return [(event.clientX - box.left) * overlay.width / box.width,
            (event.clientY - box.top) * overlay.height / box.height];
  }

  function moveCursor(event) {
    const box = overlay.getBoundingClientRect();
    cursor.hidden = false;
    cursor.style.left = `${event.clientX - box.left}px`;
    cursor.style.top = `${event.clientY - box.top}px`;
    cursor.style.width = cursor.style.height = `${sizeInput.value}px`;
  }

  overlay.addEventListener('pointerdown', (event) => {
    if (!state.image || state.busy || state.pointerId !== null) return;
    if (event.pointerType === 'mouse' && event.button !== 0) return;
    event.preventDefault();
    overlay.setPointerCapture(event.pointerId);
    state.pointerId = event.pointerId;
    overlay.dataset.pointerType = event.pointerType;  // what drew the last stroke (mouse, pen, touch)
    if (state.showing === 'result') show('photo');  // paint over the photo, not the result
    const box = overlay.getBoundingClientRect();
    const guide = state.tool === 'guide';
    const width = Math.max(guide ? GUIDE_MIN_WIDTH : 1,
                           sizeInput.value * overlay.width / box.width);  // screen -> image px
    state.stroke = { kind: 'stroke', erase: state.tool === 'eraser', guide, width,
                     points: [toImage(event)] };
    paintStroke(state.stroke, 0);
    moveCursor(event);
  });

  overlay.addEventListener('pointermove', (event) => {
    moveCursor(event);
    if (event.pointerId !== state.pointerId || state.stroke === null) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) {
      state.stroke.points.push(toImage(e));
      paintStroke(state.stroke, state.stroke.points.length - 1);
    }
  });

  function endStroke(event) {
    if (event.pointerId !== state.pointerId) return;
    state.pointerId = null;
    if (state.stroke !== null) {
      state.history.push(state.stroke);
      state.stroke = null;
    }
    if (event.pointerType !== 'mouse') cursor.hidden = true;
    refreshButtons();
  }
  overlay.addEventListener('pointerup', endStroke);
  overlay.addEventListener('pointercancel', endStroke);
  overlay.addEventListener('pointerleave', (event) => {
    if (state.pointerId === null) cursor.hidden = true;
  });

  // ---- opening an image --------------------------------------------------------------------

  function decodeImage(blob) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      const url = URL.createObjectURL(blob);
      image.onload = () => resolve(image);  // the URL stays alive: drawImage needs the pixels
      image.onerror = () => { URL.revokeObjectURL(url); reject(new Error('the browser cannot decode this file')); };
      image.src = url;
    });
  }

  async function open(file) {
    if (!file || state.busy) return;
    try {
      const image = await decodeImage(file);
      Object.assign(state, { file, image, result: null, history: [], stroke: null, pointerId: null,
                             name: (file.name || 'image').replace(/\.[^.]*$/, '') || 'image' });
      for (const canvas of [photo, overlay, guides, mask, edges]) {
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
      }
      $('hint').hidden = true;
      $('canvases').hidden = false;
      fit();
      redrawMask();
      show('photo');
      setState('ready');
      setStatus(`${file.name || 'image'}: ${image.naturalWidth}x${image.naturalHeight}. ` +
                'Paint over what should disappear, then press Inpaint.');
    } catch (error) {
      setState(state.image ? 'ready' : 'empty');
      setStatus(`Cannot open ${file.name || 'this file'}: ${error.message}.`, true);
    }
  }

  $('file').addEventListener('change', (event) => { open(event.target.files[0]); event.target.value = ''; });
  const stage = $('stage');
  stage.addEventListener('dragover', (event) => { event.preventDefault(); stage.classList.add('dragging'); });
  stage.addEventListener('dragleave', () => stage.classList.remove('dragging'));
  stage.addEventListener('drop', (event) => {
    event.preventDefault();
    stage.classList.remove('dragging');
    open(event.dataTransfer.files[0]);
  });
  window.addEventListener('paste', (event) => {
    const item = [...event.clipboardData.items].find((i) => i.type.startsWith('image/'));
    if (item) open(item.getAsFile());
  });

  // ---- tools ---------------------------------------------------------------------------------

  function undo() {
    if (buttons.undo.disabled) return;
    state.history.pop();
    redrawMask();
    refreshButtons();
  }

  for (const tool of ['brush', 'guide', 'eraser']) {
    buttons[tool].addEventListener('click', () => selectTool(tool));
  }
  buttons.undo.addEventListener('click', undo);
  buttons.clear.addEventListener('click', () => {
    state.history.push({ kind: 'clear' });
    redrawMask();
    refreshButtons();
  });
  sizeInput.addEventListener('input', () => {
    $('size-value').textContent = sizeInput.value;
    state.sizes[state.tool === 'guide' ? 'guide' : 'hole'] = Number(sizeInput.value);
  });
  buttons.compare.addEventListener('click', () => show(state.showing === 'result' ? 'photo' : 'result'));

  buttons.download.addEventListener('click', () => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(state.result.blob);
    link.download = `${state.name}_inpainted.png`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });

  const KEYS = { b: 'brush', g: 'guide', e: 'eraser' };
  window.addEventListener('keydown', (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== 'range') return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'z') {
      event.preventDefault();
      undo();
    } else if (event.key === '[' || event.key === ']') {
      const step = event.key === '[' ? -4 : 4;
      sizeInput.value = Number(sizeInput.value) + step;
      sizeInput.dispatchEvent(new Event('input'));
    } else if (Object.hasOwn(KEYS, event.key)) {
      selectTool(KEYS[event.key]);
    }
  });

  // ---- inpainting ----------------------------------------------------------------------------

  async function inpaint() {
    state.busy = true;
    setState('busy');
    refreshButtons();
    setStatus('Inpainting…');
    const started = performance.now();
    try {
      const maskBlob = await new Promise((resolve) => mask.toBlob(resolve, 'image/png'));
      const body = new FormData();
      body.append('image', state.file, state.file.name || 'image.png');
      body.append('mask', maskBlob, 'mask.png');
      if (state.guided && activeStrokes().some((s) => s.guide)) {
        body.append('edge', await new Promise((resolve) => edges.toBlob(resolve, 'image/png')), 'edge.png');
      }
      const response = await fetch('api/v1/inpaint', { method: 'POST', body });
      if (!response.ok) {
        let message = `${response.status} ${response.statusText}`;
        try { message = (await response.json()).error || message; } catch (ignored) { /* not JSON */ }
        throw new Error(message);
      }
      const blob = await response.blob();
      state.result = { blob, image: await decodeImage(blob) };
      state.busy = false;
      show('result');
      setState('done');
      setStatus(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s. ` +
                '"Before" compares; painting again starts from the photo.');
    } catch (error) {
      state.busy = false;
      setState('error');
      setStatus(`Inpainting failed: ${error.message}`, true);
    }
    refreshButtons();
  }
  buttons.inpaint.addEventListener('click', inpaint);

  // Whether the served model is edge-guided: the guide brush is enabled only then.
  fetch('healthz').then((response) => response.json()).then((health) => {
    state.guided = health.guided === true;
  }).catch(() => { state.guided = false; }).finally(() => {
    document.body.dataset.guided = String(state.guided);  // tests wait on it
    buttons.guide.title = state.guided ? 'Draw edge lines that guide the fill inside the hole (G)'
      : 'Guide lines need an edge-guided model; this one is not';
    refreshButtons();
  });
  refreshButtons();
})();
